package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadFile reads a YAML configuration file over DefaultConfig and fills the
// derived defaults (data-dir from name, initial-cluster from name and
// initial-advertise-peer-urls, dev mode's settings). It reports every
// problem it finds, each naming the file, line and key: syntax, unknown or
// unsupported keys, values of the wrong type. It does not call Validate, so
// that flags and the environment may still complete the configuration;
// Parse does all of it. On error the returned Config holds what could be
// applied. A file with dev: true gets its temporary data directory here
// (see TempDataDir).
func LoadFile(path string) (Config, error) {
	c := DefaultConfig()
	errs := c.applyFile(path, newKeyIndex())
	errs = append(errs, c.resolve(len(errs) == 0)...)
	return c, joinKeyErrors(errs)
}

// applyFile applies the YAML file at path to c.
func (c *Config) applyFile(path string, idx *keyIndex) []*KeyError {
	c.ConfigFile = path
	data, err := os.ReadFile(path)
	if err != nil {
		return []*KeyError{{Key: "config-file", Msg: "config-file: " + err.Error(), Kind: ErrBadValue}}
	}
	l := fileLoader{path: path, c: c, idx: idx}
	root, err := l.parse(data)
	if err != nil {
		return l.errs
	}
	if root != nil {
		l.mapping(root, "")
	}
	return l.errs
}

// fileLoader walks one file's YAML tree into a Config.
type fileLoader struct {
	path string
	c    *Config
	idx  *keyIndex
	errs []*KeyError
}

func (l *fileLoader) at(line int) origin {
	return origin{where: l.path + ":" + strconv.Itoa(line), rank: rankFile, line: line}
}

func (l *fileLoader) fail(line int, key string, kind error, format string, args ...any) {
	src := l.at(line)
	l.errs = append(l.errs, &KeyError{Where: src.where, Key: key, Msg: fmt.Sprintf(format, args...), Kind: kind, src: src})
}

// yamlLineError matches yaml.v3's error text, "yaml: line 3: ...".
var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the file's top-level mapping (nil for an empty file).
func (l *fileLoader) parse(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty, or comments only
		}
		msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
		if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
			msg = m[2]
			line, _ = strconv.Atoi(m[1])
		}
		// A tab in the indentation is the classic cause; say so plainly.
		if tab := tabIndentedLine(data); tab > 0 && (strings.Contains(msg, "tab") || line == 0 || line-tab <= 1 && tab-line <= 1) {
			l.fail(tab, "", ErrSyntax, "tab character in indentation (YAML indents with spaces only)")
			return nil, err
		}
		if at := firstBadLine(data); at > 0 {
			line = at
		}
		if line > 0 {
			l.fail(line, "", ErrSyntax, "%s", msg)
			return nil, err
		}
		l.errs = append(l.errs, &KeyError{Where: l.path, Msg: msg, Kind: ErrSyntax, src: origin{where: l.path, rank: rankFile}})
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		// Another document follows, well-formed or not.
		l.fail(secondDocumentLine(data, &doc), "", ErrSyntax, "a second YAML document (after ---): put every setting in one document")
		return nil, errors.New("two documents")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		l.fail(root.Line, "", ErrSyntax, "want key: value lines at the top level, got %s", shownNode(root))
		return nil, errors.New("not a mapping")
	}
	return root, nil
}

// secondDocumentLine returns the line of the "---" that starts the second
// document: the first marker after the first document's content.
func secondDocumentLine(data []byte, first *yaml.Node) int {
	start := 0
	if len(first.Content) > 0 {
		start = first.Content[0].Line
	}
	for i, line := range strings.Split(string(data), "\n") {
		if i+1 > start && (strings.HasPrefix(line, "---") || strings.HasPrefix(line, "...")) {
			return i + 1
		}
	}
	return start
}

// firstBadLine returns the line at which data stops being YAML: one past
// the longest prefix of whole lines that parses. yaml.v3's own line numbers
// point at where the enclosing construct began, sometimes counted from 0;
// this points at the line to fix. 0 if data is too long to search.
func firstBadLine(data []byte) int {
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 2000 {
		return 0
	}
	for n := len(lines) - 1; n > 0; n-- {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(strings.Join(lines[:n], "")), &doc) == nil {
			return n + 1
		}
	}
	return 1
}

// tabIndentedLine returns the first line (1-based) whose indentation holds a
// tab before any content, or 0.
func tabIndentedLine(data []byte) int {
	for i, line := range strings.Split(string(data), "\n") {
		rest := strings.TrimLeft(line, " \t")
		if rest == "" || strings.HasPrefix(rest, "#") {
			continue
		}
		if strings.Contains(line[:len(line)-len(rest)], "\t") {
			return i + 1
		}
	}
	return 0
}

// mapping applies the key: value pairs of m; section is "" at the top level
// or the section's name.
func (l *fileLoader) mapping(m *yaml.Node, section string) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if k.Kind != yaml.ScalarNode {
			l.fail(k.Line, "", ErrSyntax, "want a key name, got %s", shownNode(k))
			continue
		}
		name := k.Value
		full := name
		if section != "" {
			full = section + "." + name
		}
		if k.Tag == "!!merge" {
			l.fail(k.Line, full, ErrSyntax, "merge keys (<<) are not supported: write the keys out")
			continue
		}
		if first, dup := seen[name]; dup {
			l.fail(k.Line, full, ErrSyntax, "duplicate key %q (first on line %d)", full, first)
			continue
		}
		seen[name] = k.Line

		if spec, ok := l.idx.byKey[full]; ok {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue // "key:" with no value keeps the default, as in etcd
			}
			if err := l.c.applyKey(spec, l.at(k.Line), func(kv keyValue) error { return kv.setNode(v) }); err != nil {
				l.errs = append(l.errs, err)
			}
			continue
		}
		if kind, ok := l.idx.sections[full]; ok && section == "" {
			l.section(full, kind, k, v)
			continue
		}
		l.unknown(k.Line, section, name)
	}
}

func (l *fileLoader) section(name string, kind sectionKind, k, v *yaml.Node) {
	empty := v.Kind == yaml.ScalarNode && v.Tag == "!!null" || v.Kind == yaml.MappingNode && len(v.Content) == 0
	switch kind {
	case sectionReserved:
		l.fail(k.Line, name, ErrUnsupported, "%s: not supported yet (%s); remove this section", name, l.idx.reservedWhy[name])
		return
	case sectionUnsupported:
		if !empty {
			l.fail(k.Line, name, ErrUnsupported, "%s: etcd option not supported by Concord (discovery is not implemented; list the members in initial-cluster); remove it", name)
		}
		return
	}
	if empty {
		return
	}
	if v.Kind != yaml.MappingNode {
		l.fail(k.Line, name, ErrBadValue, "%s: want a mapping of keys (%s), got %s", name, strings.Join(l.idx.sectionNames(name), ", "), shownNode(v))
		return
	}
	l.mapping(v, name)
}

// unknown reports a key that is not in the table, with the best hint there
// is.
func (l *fileLoader) unknown(line int, section, name string) {
	full := name
	if section != "" {
		full = section + "." + name
	}
	fail := func(format string, args ...any) {
		l.fail(line, full, ErrUnknownKey, format, args...)
	}
	if section != "" {
		if s := suggest(name, l.idx.sectionNames(section)); s != "" {
			fail("unknown key %q in %s (did you mean %q?)", name, section, s)
		} else {
			fail("unknown key %q in %s (it has %s)", name, section, strings.Join(l.idx.sectionNames(section), ", "))
		}
		return
	}
	if hint := knownMistakes(name); hint != "" {
		fail("unknown key %q: %s", name, hint)
		return
	}
	// A flag name whose file form is nested: cert-file, peer-key-file, ...
	if spec, ok := l.idx.byFlag[name]; ok && spec.key != name {
		sec, sub, _ := strings.Cut(spec.key, ".")
		fail("unknown key %q: in a config file it is %q under %s", name, sub, sec)
		return
	}
	if rest, ok := strings.CutPrefix(name, "experimental-"); ok {
		if _, known := l.idx.byKey[rest]; known {
			fail("unknown key %q (etcd 3.6 renamed it %q)", name, rest)
			return
		}
	}
	if s := suggest(name, l.idx.topLevelNames()); s != "" {
		fail("unknown key %q (did you mean %q?)", name, s)
		return
	}
	fail("unknown key %q (docs/configuration.md lists every key)", name)
}

// knownMistakes explains keys that users bring from tutorials and old etcd
// configurations, which etcd itself silently ignores.
func knownMistakes(name string) string {
	switch name {
	case "enable-authorization", "enable-auth", "auth-enabled", "authorization":
		return "neither etcd nor Concord has this option (etcd ignores it silently); " +
			`authentication is switched on at runtime, after creating the root user: "etcdctl user add root" then "etcdctl auth enable"`
	case "proxy", "proxy-failure-wait", "proxy-refresh-interval",
		"proxy-dial-timeout", "proxy-write-timeout", "proxy-read-timeout", "enable-v2":
		return "an etcd v2 option that etcd 3 no longer reads; remove it"
	case "config-file":
		return "config-file is given as a flag or as CONCORD_CONFIG_FILE, not inside a config file"
	}
	return ""
}

// suggest returns the candidate closest to name, if it is close enough to
// be a typo.
func suggest(name string, candidates []string) string {
	best, bestDist := "", len(name)
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > max(2, len(name)/4) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
