package agent

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite the generated tables in docs/configuration.md")

const (
	docPath       = "../docs/configuration.md"
	docBeginKeys  = "<!-- BEGIN GENERATED: keys (go test ./agent -run TestConfigurationDoc -update) -->"
	docEndKeys    = "<!-- END GENERATED: keys -->"
	docBeginEtcd  = "<!-- BEGIN GENERATED: unsupported (go test ./agent -run TestConfigurationDoc -update) -->"
	docEndEtcd    = "<!-- END GENERATED: unsupported -->"
	docBeginVars  = "<!-- BEGIN GENERATED: client variables -->"
	docEndVars    = "<!-- END GENERATED: client variables -->"
	docEmptyValue = "(none)"
)

// TestConfigurationDoc keeps docs/configuration.md's tables equal to the key
// table: every key with its flag, variable, default and meaning.
func TestConfigurationDoc(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	idx := newKeyIndex()
	sections := []struct{ begin, end, body string }{
		{docBeginKeys, docEndKeys, renderKeyTables(idx)},
		{docBeginEtcd, docEndEtcd, renderUnsupportedTable(idx)},
		{docBeginVars, docEndVars, renderClientVars()},
	}
	for _, s := range sections {
		before, rest, ok := strings.Cut(text, s.begin+"\n")
		if !ok {
			t.Fatalf("%s lacks the line %s", docPath, s.begin)
		}
		current, after, ok := strings.Cut(rest, s.end)
		if !ok {
			t.Fatalf("%s lacks the line %s", docPath, s.end)
		}
		if current != s.body {
			if !*updateDocs {
				t.Errorf("%s: the table after %q is out of date; run: go test ./agent -run TestConfigurationDoc -update", docPath, s.begin)
			}
			text = before + s.begin + "\n" + s.body + s.end + after
		}
	}
	if *updateDocs && text != string(doc) {
		if err := os.WriteFile(filepath.Clean(docPath), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func docDefault(s *keySpec) string {
	if s.docDefault != "" {
		value, note, _ := strings.Cut(s.docDefault, " (")
		if note != "" {
			note = " (" + note
		}
		return "`" + value + "`" + note
	}
	c := DefaultConfig()
	v := s.field(&c).String()
	if v == "" {
		return docEmptyValue
	}
	return "`" + v + "`"
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func renderKeyTables(idx *keyIndex) string {
	var b strings.Builder
	group := ""
	for _, s := range idx.specs {
		if s.unsupported() {
			continue
		}
		if s.group != group {
			group = s.group
			fmt.Fprintf(&b, "\n### %s\n\n", group)
			b.WriteString("| YAML key | flag | environment variable | default | meaning |\n|---|---|---|---|---|\n")
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | `%s` | %s | %s |\n", s.key, s.flag, s.envName(), cell(docDefault(s)), cell(s.usage))
	}
	b.WriteString("\n")
	return b.String()
}

func renderUnsupportedTable(idx *keyIndex) string {
	var b strings.Builder
	b.WriteString("| etcd key | flag | accepted values | why Concord refuses other values |\n|---|---|---|---|\n")
	for _, s := range idx.specs {
		if !s.unsupported() {
			continue
		}
		accepted := []string{"empty"}
		for _, a := range s.accepted {
			accepted = append(accepted, "`"+a+"`")
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | %s | %s |\n", s.key, s.flag, cell(strings.Join(accepted, ", ")), cell(s.why))
	}
	return b.String()
}

func renderClientVars() string {
	var b strings.Builder
	for _, v := range clientEnvVars() {
		fmt.Fprintf(&b, "`%s` ", v)
	}
	return strings.TrimSpace(b.String()) + "\n"
}
