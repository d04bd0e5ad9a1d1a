package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parseFile writes content to config.yml in the current directory and parses
// it as `concord agent --config-file config.yml` would.
func parseFile(t *testing.T, content string) (Config, error) {
	t.Helper()
	if err := os.WriteFile("config.yml", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return Parse([]string{"--config-file", "config.yml"}, nil)
}

func TestMalformedFiles(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name, file, want string
		kind             error
	}{
		{
			name: "unknown key with suggestion",
			file: "name: n1\nlisen-client-urls: http://127.0.0.1:2379\n",
			want: `config.yml:2: unknown key "lisen-client-urls" (did you mean "listen-client-urls"?)`,
			kind: ErrUnknownKey,
		},
		{
			name: "unknown key far from any",
			file: "colour: blue\n",
			want: `config.yml:1: unknown key "colour" (docs/configuration.md lists every key)`,
			kind: ErrUnknownKey,
		},
		{
			name: "unknown key in a section",
			file: "client-transport-security:\n  cert-fil: /tls/c.crt\n",
			want: `config.yml:2: unknown key "cert-fil" in client-transport-security (did you mean "cert-file"?)`,
			kind: ErrUnknownKey,
		},
		{
			name: "flag name used as a top-level key",
			file: "peer-cert-file: /tls/p.crt\n",
			want: `config.yml:1: unknown key "peer-cert-file": in a config file it is "cert-file" under peer-transport-security`,
			kind: ErrUnknownKey,
		},
		{
			name: "etcd 3.5 experimental name",
			file: "experimental-compact-hash-check-time: 1m\n",
			want: `config.yml:1: unknown key "experimental-compact-hash-check-time" (etcd 3.6 renamed it "compact-hash-check-time")`,
			kind: ErrUnknownKey,
		},
		{
			name: "etcd v2 key",
			file: "proxy: 'off'\n",
			want: `config.yml:1: unknown key "proxy": an etcd v2 option that etcd 3 no longer reads; remove it`,
			kind: ErrUnknownKey,
		},
		{
			name: "config-file inside the file",
			file: "config-file: other.yml\n",
			want: `config.yml:1: unknown key "config-file": config-file is given as a flag or as CONCORD_CONFIG_FILE, not inside a config file`,
			kind: ErrUnknownKey,
		},
		{
			name: "milliseconds as a word",
			file: "\n\nheartbeat-interval: fast\n",
			want: `config.yml:3: heartbeat-interval: want an integer (milliseconds), got "fast"`,
			kind: ErrBadValue,
		},
		{
			name: "milliseconds as a duration",
			file: "election-timeout: 1s\n",
			want: `config.yml:1: election-timeout: want an integer (milliseconds), got "1s": write 1000`,
			kind: ErrBadValue,
		},
		{
			name: "negative count",
			file: "snapshot-count: -1\n",
			want: `config.yml:1: snapshot-count: want a non-negative integer, got -1`,
			kind: ErrBadValue,
		},
		{
			name: "float for an integer",
			file: "max-txn-ops: 1.5\n",
			want: `config.yml:1: max-txn-ops: want an integer, got 1.5`,
			kind: ErrBadValue,
		},
		{
			name: "out of range",
			file: "max-concurrent-streams: 4294967296\n",
			want: `config.yml:1: max-concurrent-streams: 4294967296 is out of range`,
			kind: ErrBadValue,
		},
		{
			name: "yes is not a boolean",
			file: "enable-pprof: yes\n",
			want: `config.yml:1: enable-pprof: want true or false, got "yes"`,
			kind: ErrBadValue,
		},
		{
			name: "list for a string",
			file: "name:\n  - a\n  - b\n",
			want: `config.yml:1: name: want a string, got a list`,
			kind: ErrBadValue,
		},
		{
			name: "mapping for a list",
			file: "listen-client-urls:\n  a: b\n",
			want: `config.yml:1: listen-client-urls: want a comma-separated string or a list of strings, got a mapping`,
			kind: ErrBadValue,
		},
		{
			name: "string for a section",
			file: "client-transport-security: on\n",
			want: `config.yml:1: client-transport-security: want a mapping of keys (cert-file, key-file, client-cert-auth, trusted-ca-file, auto-tls, client-cert-file, client-key-file, allowed-cn, allowed-hostname, skip-client-san-verification), got "on"`,
			kind: ErrBadValue,
		},
		{
			name: "duration without a unit",
			file: "grpc-keepalive-timeout: \"20\"\n",
			want: `config.yml:1: grpc-keepalive-timeout: want a duration with a unit, such as "20s", got "20"`,
			kind: ErrBadValue,
		},
		{
			name: "duration as etcd's nanoseconds",
			file: "grpc-keepalive-min-time: 5000000000\n",
			want: `config.yml:1: grpc-keepalive-min-time: want a duration with a unit, such as "5s", got 5000000000 (etcd reads a bare number here as nanoseconds: 5s)`,
			kind: ErrBadValue,
		},
		{
			name: "bad duration",
			file: "watch-progress-notify-interval: soon\n",
			want: `config.yml:1: watch-progress-notify-interval: want a duration with a unit, such as "10m", got "soon"`,
			kind: ErrBadValue,
		},
		{
			name: "URL without a scheme",
			file: "listen-client-urls: 127.0.0.1:2379\n",
			want: `config.yml:1: listen-client-urls: "127.0.0.1:2379": want scheme://host:port, such as "http://127.0.0.1:2379"`,
			kind: ErrBadValue,
		},
		{
			name: "URL without a port",
			file: "advertise-client-urls: http://10.0.0.1\n",
			want: `config.yml:1: advertise-client-urls: "http://10.0.0.1" has no port (want scheme://host:port)`,
			kind: ErrBadValue,
		},
		{
			name: "URL with a path",
			file: "advertise-client-urls: http://10.0.0.1:2379/v3\n",
			want: `config.yml:1: advertise-client-urls: "http://10.0.0.1:2379/v3": want only scheme://host:port, without a path`,
			kind: ErrBadValue,
		},
		{
			name: "URL with a bad scheme",
			file: "listen-peer-urls: tcp://127.0.0.1:2380\n",
			want: `config.yml:1: listen-peer-urls: "tcp://127.0.0.1:2380": want scheme http, https, unix or unixs, got "tcp"`,
			kind: ErrBadValue,
		},
		{
			name: "listen URL on a host name",
			file: "listen-peer-urls: http://node1.example:2380\n",
			want: `config.yml:1: listen-peer-urls: "http://node1.example:2380": a listen URL needs an IP address or localhost, not the host name "node1.example"`,
			kind: ErrBadValue,
		},
		{
			name: "placeholder",
			file: "advertise-client-urls: http://{{ .IP }}:2379\n",
			want: `config.yml:1: advertise-client-urls: "http://{{ .IP }}:2379": {{ .IP }} is a placeholder: replace it with an address of this node that clients can reach`,
			kind: ErrBadValue,
		},
		{
			name: "duplicate key",
			file: "name: a\ndata-dir: /d\nname: b\n",
			want: `config.yml:3: duplicate key "name" (first on line 1)`,
			kind: ErrSyntax,
		},
		{
			name: "duplicate key in a section",
			file: "socket-options:\n  reuse-port: true\n  reuse-port: false\n",
			want: `config.yml:3: duplicate key "socket-options.reuse-port" (first on line 2)`,
			kind: ErrSyntax,
		},
		{
			name: "tab indentation",
			file: "client-transport-security:\n\tcert-file: /tls/c.crt\n",
			want: `config.yml:2: tab character in indentation (YAML indents with spaces only)`,
			kind: ErrSyntax,
		},
		{
			name: "syntax error",
			file: "name: n1\nlisten-client-urls: [http://127.0.0.1:2379\n",
			want: `config.yml:2: did not find expected ',' or ']'`,
			kind: ErrSyntax,
		},
		{
			name: "two documents",
			file: "name: a\n---\nname: b\n",
			want: `config.yml:2: a second YAML document (after ---): put every setting in one document`,
			kind: ErrSyntax,
		},
		{
			name: "a broken second document",
			file: "# settings\nname: a\n---\n[b\n",
			want: `config.yml:3: a second YAML document (after ---): put every setting in one document`,
			kind: ErrSyntax,
		},
		{
			name: "a list at the top",
			file: "- name: a\n",
			want: `config.yml:1: want key: value lines at the top level, got a list`,
			kind: ErrSyntax,
		},
		{
			name: "reserved Concord section",
			file: "dns:\n  domain: concord.\n",
			want: `config.yml:1: dns: not supported yet (the DNS interface comes with the service registry); remove this section`,
			kind: ErrUnsupported,
		},
		{
			name: "etcd option Concord does not implement",
			file: "force-new-cluster: true\n",
			want: `config.yml:1: force-new-cluster: etcd option not supported by Concord (forcing a new cluster from existing data is not implemented); remove it or set it to etcd's default, false`,
			kind: ErrUnsupported,
		},
		{
			name: "etcd section Concord does not implement",
			file: "discovery-config:\n  token: abc\n",
			want: `config.yml:1: discovery-config: etcd option not supported by Concord (discovery is not implemented; list the members in initial-cluster); remove it`,
			kind: ErrUnsupported,
		},
		{
			name: "several problems, in line order",
			file: "heartbeat-interval: 100\nelection-timeout: 300\nname: [x\n",
			want: `config.yml:3: did not find expected ',' or ']'`,
			kind: ErrSyntax,
		},
		{
			name: "several problems at once",
			file: "lisen-peer-urls: http://127.0.0.1:2380\nmax-txn-ops: many\nelection-timeout: 300\n",
			want: `config.yml:1: unknown key "lisen-peer-urls" (did you mean "listen-peer-urls"?)` + "\n" +
				`config.yml:2: max-txn-ops: want an integer, got "many"` + "\n" +
				`config.yml:3: election-timeout: 300 ms is less than 5 × heartbeat-interval (100 ms): raise it to at least 500`,
			kind: ErrUnknownKey,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFile(t, tt.file)
			if err == nil {
				t.Fatalf("no error; want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error is not %v", tt.kind)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || !strings.HasPrefix(ke.Where, "config.yml") {
				t.Errorf("error is not a *KeyError located in config.yml: %#v", ke)
			}
		})
	}
}

// TestFileForms checks what a file may write that etcd's loader also reads.
func TestFileForms(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := parseFile(t, `# comments, blank lines and quoting as etcd's sample file has them
name: 'node-1'

wal-dir:
initial-cluster:
heartbeat-interval: "100"
election-timeout: 1000
listen-client-urls:
  - http://127.0.0.1:2379
  - http://10.0.0.1:2379
advertise-client-urls: http://10.0.0.1:2379, http://127.0.0.1:2379
auto-compaction-retention: 1
grpc-keepalive-timeout: 0
cipher-suites: [
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
]
socket-options:
  reuse-address: true
client-transport-security:
# etcd's defaults for options Concord does not implement are accepted
max-snapshots: 5
log-outputs: [stderr]
force-new-cluster: false
initial-election-tick-advance: true
peer-transport-security:
  allowed-cn:
  skip-client-san-verification: false
`)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ got, want string }{
		{c.Name, "node-1"},
		{c.WALDir, ""},
		{c.Cluster.InitialCluster, "node-1=http://localhost:2380"}, // null keeps the derived default
		{c.Raft.HeartbeatInterval.String(), "100ms"},
		{strings.Join(c.Network.ListenClientURLs, ","), "http://127.0.0.1:2379,http://10.0.0.1:2379"},
		{strings.Join(c.Network.AdvertiseClientURLs, ","), "http://10.0.0.1:2379,http://127.0.0.1:2379"},
		{c.Store.AutoCompactionRetention, "1"},
		{c.GRPC.KeepAliveTimeout.String(), "0s"},
		{strings.Join(c.TLS.CipherSuites, ","), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
		{boolText(c.Network.SocketReuseAddress), "true"},
	}
	for i, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("check %d: got %q, want %q", i, ch.got, ch.want)
		}
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestEmptyFiles(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, content := range []string{"", "# only a comment\n", "---\n", "~\n"} {
		c, err := parseFile(t, content)
		if err != nil {
			t.Errorf("%q: %v", content, err)
		}
		if c.Name != DefaultName {
			t.Errorf("%q: name %q", content, c.Name)
		}
	}
}

func TestMissingFile(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := Parse([]string{"--config-file", "nope.yml"}, nil)
	if err == nil || err.Error() != "config-file: open nope.yml: no such file or directory" {
		t.Errorf("err = %v", err)
	}
	_, err = LoadFile(filepath.Join("no", "such.yml"))
	if !errors.Is(err, ErrBadValue) {
		t.Errorf("LoadFile of a missing file: %v", err)
	}
}

func TestYAMLAnchorsAreFollowed(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := parseFile(t, "listen-client-urls: &u http://127.0.0.1:2379\nadvertise-client-urls: *u\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Network.AdvertiseClientURLs, ","); got != "http://127.0.0.1:2379" {
		t.Errorf("alias gave %q", got)
	}
}

func FuzzLoadFile(f *testing.F) {
	for _, name := range []string{"single-node.yml", "tutorial-config.yml"} {
		if b, err := os.ReadFile(filepath.Join("testdata", "config", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: [a\n"))
	f.Add([]byte("client-transport-security:\n\tcert-file: x\n"))
	f.Add([]byte("a: &x [*x]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.yml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var (
			c    Config
			err  error
			done = make(chan struct{})
		)
		go func() { c, err = LoadFile(path); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("LoadFile hung on %q", data)
		}
		if c.TempDataDir() {
			os.RemoveAll(c.DataDir)
		}
		if err != nil {
			// Every problem is a located KeyError of a known kind.
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, path) {
					t.Fatalf("error line without the file: %q", line)
				}
			}
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadValue) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		_ = c.Validate() // must not panic
	})
}
