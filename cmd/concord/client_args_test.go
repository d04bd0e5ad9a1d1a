package main

import (
	"strings"
	"testing"
)

// TestArgumentErrors: a bad command line is refused before any request is
// sent, with one error line and etcdctl's exit code. The endpoint is dead,
// so a command that did reach for the network would fail differently.
func TestArgumentErrors(t *testing.T) {
	dead := deadEndpoint(t)
	for _, tc := range []struct {
		args  []string
		stdin string
		code  int
		want  string // the error line, without "Error: "
	}{
		// kv get
		{[]string{"kv", "get"}, "", exitBadArgs, "get command needs one argument as key and an optional argument as range_end"},
		{[]string{"kv", "get", "a", "b", "c"}, "", exitBadArgs, "get command needs one argument as key and an optional argument as range_end"},
		{[]string{"kv", "get", "k", "--rev", "abc"}, "", exitGeneral, `invalid argument "abc" for "--rev" flag: strconv.ParseInt: parsing "abc": invalid syntax`},
		{[]string{"kv", "get", "k", "--prefix", "--from-key"}, "", exitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one"},
		{[]string{"kv", "get", "k", "z", "--prefix"}, "", exitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set"},
		{[]string{"kv", "get", "k", "--keys-only", "--count-only"}, "", exitBadArgs, "`--keys-only` and `--count-only` cannot be set at the same time, choose one"},
		{[]string{"kv", "get", "k", "--order", "SIDEWAYS"}, "", exitBadFeature, "bad sort order SIDEWAYS"},
		{[]string{"kv", "get", "k", "--sort-by", "SIZE"}, "", exitBadFeature, "bad sort target SIZE"},
		{[]string{"kv", "get", "k", "--consistency", "x"}, "", exitBadFeature, `unknown consistency flag "x"`},
		{[]string{"kv", "get", "k", "--min-mod-rev", "5", "--max-mod-rev", "4"}, "", exitBadFeature, "getMinModRev(=5) > getMaxModRev(=4)"},
		{[]string{"kv", "get", "k", "-w", "xml"}, "", exitBadFeature, "unsupported output format"},
		{[]string{"kv", "get", "k", "-w", "table"}, "", exitBadFeature, "table not supported as output format"},
		{[]string{"kv", "get", "k", "--count-only"}, "", exitBadArgs, "--count-only is only for `--write-out=fields`"},
		{[]string{"kv", "get", "k", "--print-value-only", "-w", "json"}, "", exitBadArgs, "print-value-only is only for `--write-out=simple`"},
		// kv put
		{[]string{"kv", "put"}, "", exitBadArgs, "put command needs 1 argument and input from stdin or 2 arguments"},
		{[]string{"kv", "put", "k", "v", "extra"}, "", exitBadArgs, "put command needs 1 argument and input from stdin or 2 arguments"},
		{[]string{"kv", "put", "k", "v", "--ignore-value"}, "", exitBadArgs, "put command needs only 1 argument when 'ignore-value' is set"},
		{[]string{"kv", "put", "k", "v", "--lease", "zz"}, "", exitBadArgs, `bad lease ID (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex`},
		{[]string{"kv", "put", "k", "v", "-w", "table"}, "", exitBadFeature, "table not supported as output format"},
		// kv del
		{[]string{"kv", "del"}, "", exitBadArgs, "del command needs one argument as key and an optional argument as range_end"},
		{[]string{"kv", "del", "k", "--prefix", "--from-key"}, "", exitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one"},
		// kv txn
		{[]string{"kv", "txn", "extra"}, "", exitBadArgs, "txn command does not accept argument"},
		{[]string{"kv", "txn"}, "value(k) = \"v\"\n\n\n\n", exitInvalidInput, `malformed comparison: value(k) = "v" (want target("key") op "value": expected quoted string)`},
		{[]string{"kv", "txn"}, "mod(\"k\") >= \"1\"\n\n\n\n", exitInvalidInput, `malformed comparison: mod("k") >= "1" (unknown operator >=; want =, !=, < or >)`},
		{[]string{"kv", "txn"}, "mod(\"k\") > \"one\"\n\n\n\n", exitInvalidInput, `invalid txn compare request: mod("k") > "one" ("one" is not a number)`},
		{[]string{"kv", "txn"}, "size(\"k\") > \"1\"\n\n\n\n", exitInvalidInput, `malformed comparison: size("k") > "1" (unknown target size)`},
		{[]string{"kv", "txn"}, "nonsense\n\n\n\n", exitInvalidInput, "malformed comparison: nonsense"},
		{[]string{"kv", "txn"}, "\nupsert k v\n\n\n", exitInvalidInput, `invalid txn request: upsert k v (unknown request "upsert"; want get, put or del)`},
		{[]string{"kv", "txn"}, "\nput k\n\n\n", exitInvalidInput, "invalid txn request: put k (put command needs 1 argument and input from stdin or 2 arguments)"},
		{[]string{"kv", "txn"}, "\nget k --bogus\n\n\n", exitInvalidInput, "invalid txn request: get k --bogus (unknown flag: --bogus)"},
		{[]string{"kv", "txn"}, "\nput k \"open\n\n\n", exitInvalidInput, `invalid txn request: put k "open (unterminated double quote)`},
		// kv watch
		{[]string{"kv", "watch"}, "", exitBadArgs, "bad number of arguments"},
		{[]string{"kv", "watch", "k", "--"}, "", exitBadArgs, "bad number of arguments (found separator --, but no commands)"},
		{[]string{"kv", "watch", "a", "b", "--prefix"}, "", exitBadArgs, "`range_end` and `--prefix` are mutually exclusive"},
		{[]string{"kv", "watch", "k", "-w", "table"}, "", exitBadFeature, "table not supported as output format"},
		// lease
		{[]string{"lease", "grant"}, "", exitBadArgs, "lease grant command needs TTL argument"},
		{[]string{"lease", "grant", "ten"}, "", exitBadArgs, `bad TTL (strconv.ParseInt: parsing "ten": invalid syntax)`},
		{[]string{"lease", "revoke", "zz"}, "", exitBadArgs, `bad lease ID arg (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex`},
		{[]string{"lease", "timetolive"}, "", exitBadArgs, "lease timetolive command needs lease ID as argument"},
		{[]string{"lease", "keep-alive", "1", "2"}, "", exitBadArgs, "lease keep-alive command needs lease ID as argument"},
		{[]string{"lease", "list", "-w", "table"}, "", exitBadFeature, "table not supported as output format"},
		// member
		{[]string{"member", "add"}, "", exitBadArgs, "member name not provided"},
		{[]string{"member", "add", "n"}, "", exitBadArgs, "member peer urls not provided"},
		{[]string{"member", "add", "n", "http://10.0.0.1:2380"}, "", exitBadArgs, "too many arguments, did you mean --peer-urls=http://10.0.0.1:2380"},
		{[]string{"member", "add", "n", "--peer-urls", "http://h:2380", "-w", "fields"}, "", exitBadFeature, "fields not supported as output format"},
		{[]string{"member", "remove"}, "", exitBadArgs, "member ID is not provided"},
		{[]string{"member", "remove", "zz"}, "", exitBadArgs, `bad member ID arg (strconv.ParseUint: parsing "zz": invalid syntax), expecting ID in Hex`},
		{[]string{"member", "update", "1a"}, "", exitBadArgs, "member peer urls not provided"},
		{[]string{"member", "promote", "-5"}, "", exitGeneral, "unknown shorthand flag: '5' in -5"},
		{[]string{"member", "list", "--consistency", "q"}, "", exitBadFeature, `unknown consistency flag "q"`},
		// global flags
		{[]string{"kv", "get", "k", "--dial-timeout", "xyz"}, "", exitGeneral, `invalid argument "xyz" for "--dial-timeout" flag: time: invalid duration "xyz"`},
		{[]string{"kv", "get", "k", "--nope"}, "", exitGeneral, "unknown flag: --nope"},
		{[]string{"kv", "get", "k", "--user", "alice"}, "", exitBadArgs, `no password for user "alice": use --user alice:PASSWORD, --password or CONCORD_PASSWORD`},
		{[]string{"kv", "get", "k", "--cert", ""}, "", exitBadArgs, "empty string is passed to --cert option"},
		{[]string{"kv", "get", "k", "--cert", "/nonexistent.pem", "--key", "/nonexistent-key.pem"}, "", exitBadArgs, "open /nonexistent.pem: no such file or directory"},
		{[]string{"endpoint", "status", "-w", "protobuf"}, "", exitBadFeature, "unsupported output format"},
	} {
		name := strings.Join(tc.args, " ")
		args := append(tc.args, "--endpoints="+dead, "--command-timeout=2s", "--dial-timeout=500ms")
		if strings.Contains(name, " -- ") || strings.HasSuffix(name, " --") {
			args = append([]string{tc.args[0], "--endpoints=" + dead}, tc.args[1:]...)
		}
		r := execute(t.Context(), tc.stdin, args...)
		if r.code != tc.code || r.stderr != "Error: "+tc.want+"\n" {
			t.Errorf("concord %s\n got: exit %d, stderr %q\nwant: exit %d, stderr %q", name, r.code, r.stderr, tc.code, "Error: "+tc.want+"\n")
		}
		if r.stdout != "" {
			t.Errorf("concord %s: stdout %q, want nothing", name, r.stdout)
		}
	}
}
