package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValidateRelations runs command lines through Parse and checks the
// exact messages of the relations Validate enforces.
func TestValidateRelations(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key"), filepath.Join(dir, "ca.crt")
	for _, f := range []string{cert, key, ca} {
		if err := os.WriteFile(f, []byte("-----BEGIN-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	three := "--initial-cluster=n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380"
	tests := []struct {
		name string
		args []string
		env  []string
		want string
		kind error
	}{
		{
			name: "election timeout below 5x heartbeat",
			args: []string{"--heartbeat-interval", "100", "--election-timeout", "300"},
			want: `flag --election-timeout: election-timeout: 300 ms is less than 5 × heartbeat-interval (100 ms): raise it to at least 500`,
			kind: ErrConflict,
		},
		{
			name: "heartbeat raised past the default election timeout",
			env:  []string{"CONCORD_HEARTBEAT_INTERVAL=300"},
			want: `env CONCORD_HEARTBEAT_INTERVAL: election-timeout: 1000 ms is less than 5 × heartbeat-interval (300 ms): raise it to at least 1500`,
			kind: ErrConflict,
		},
		{
			name: "election timeout too long",
			args: []string{"--election-timeout", "60000"},
			want: `flag --election-timeout: election-timeout: 60000 ms is more than the maximum, 50000`,
			kind: ErrBadValue,
		},
		{
			name: "zero heartbeat",
			args: []string{"--heartbeat-interval", "0"},
			want: `flag --heartbeat-interval: heartbeat-interval: want at least 1 (milliseconds), got 0`,
			kind: ErrBadValue,
		},
		{
			name: "name missing from initial-cluster",
			args: []string{"--name", "n4", "--initial-advertise-peer-urls", "http://10.0.0.4:2380", three},
			want: `flag --initial-cluster: initial-cluster: has no entry for this member's name "n4" (it lists n1, n2, n3)`,
			kind: ErrConflict,
		},
		{
			name: "own entry disagrees with the advertised peer URLs",
			args: []string{"--name", "n1", "--initial-advertise-peer-urls", "http://10.0.0.9:2380", three},
			want: `flag --initial-cluster: initial-cluster: n1=http://10.0.0.1:2380 does not match initial-advertise-peer-urls (http://10.0.0.9:2380)`,
			kind: ErrConflict,
		},
		{
			name: "one peer URL for two members",
			args: []string{"--name", "n1", "--initial-advertise-peer-urls", "http://10.0.0.1:2380",
				"--initial-cluster", "n1=http://10.0.0.1:2380,n2=http://10.0.0.1:2380"},
			want: `flag --initial-cluster: initial-cluster: "http://10.0.0.1:2380" is the peer URL of both n1 and n2`,
			kind: ErrConflict,
		},
		{
			name: "existing state without the running members",
			args: []string{"--name", "n4", "--initial-cluster-state", "existing", "--listen-peer-urls", "http://127.0.0.1:3380"},
			want: `flag --initial-cluster-state: initial-cluster: initial-cluster-state is existing, but initial-cluster lists only this member: list the running members too (as "member add" prints them)`,
			kind: ErrConflict,
		},
		{
			name: "initial-cluster not name=url",
			args: []string{"--initial-cluster", "http://10.0.0.1:2380"},
			want: `flag --initial-cluster: initial-cluster: entry "http://10.0.0.1:2380": want name=peerURL`,
			kind: ErrBadValue,
		},
		{
			name: "bad cluster state",
			args: []string{"--initial-cluster-state", "standby"},
			want: `flag --initial-cluster-state: initial-cluster-state: want "new" or "existing", got "standby"`,
			kind: ErrBadValue,
		},
		{
			name: "advertise client URL missing when listening on 0.0.0.0",
			args: []string{"--listen-client-urls", "http://0.0.0.0:2379"},
			want: `flag --listen-client-urls: advertise-client-urls: required when listen-client-urls listens on every interface ("http://0.0.0.0:2379"): set the URL clients should use to reach this member`,
			kind: ErrConflict,
		},
		{
			name: "advertise peer URL missing when listening on [::]",
			env:  []string{"CONCORD_LISTEN_PEER_URLS=http://[::]:2380"},
			want: `env CONCORD_LISTEN_PEER_URLS: initial-advertise-peer-urls: required when listen-peer-urls listens on every interface ("http://[::]:2380"): set the URL the other members should use to reach this member`,
			kind: ErrConflict,
		},
		{
			name: "advertising 0.0.0.0",
			args: []string{"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://0.0.0.0:2379"},
			want: `flag --advertise-client-urls: advertise-client-urls: "http://0.0.0.0:2379": 0.0.0.0 is not an address anyone can connect to: use an address of this node that clients can reach`,
			kind: ErrBadValue,
		},
		{
			name: "URL listed twice",
			args: []string{"--listen-client-urls", "http://127.0.0.1:2379,http://127.0.0.1:2379"},
			want: `flag --listen-client-urls: listen-client-urls: "http://127.0.0.1:2379" is listed twice`,
			kind: ErrBadValue,
		},
		{
			name: "https without certificates",
			args: []string{"--listen-client-urls", "https://127.0.0.1:2379"},
			want: `flag --listen-client-urls: listen-client-urls: "https://127.0.0.1:2379" needs TLS: set client-transport-security cert-file and key-file, or auto-tls`,
			kind: ErrConflict,
		},
		{
			name: "certificates without https",
			args: []string{"--cert-file", cert, "--key-file", key},
			want: `flag --cert-file: client-transport-security: TLS is configured but no listen-client-urls URL is https://, so it would not be used: change the URLs to https://`,
			kind: ErrConflict,
		},
		{
			name: "certificate without its key",
			args: []string{"--peer-cert-file", cert, "--listen-peer-urls", "https://127.0.0.1:2380"},
			want: `flag --peer-cert-file: peer-transport-security.key-file: required with cert-file`,
			kind: ErrConflict,
		},
		{
			name: "client-cert-auth without a CA",
			args: []string{"--listen-client-urls", "https://127.0.0.1:2379", "--cert-file", cert, "--key-file", key, "--client-cert-auth"},
			want: `flag --client-cert-auth: client-transport-security.trusted-ca-file: required with client-cert-auth (the CA that signs client certificates)`,
			kind: ErrConflict,
		},
		{
			name: "auto-tls and files",
			args: []string{"--listen-peer-urls", "https://127.0.0.1:2380", "--peer-cert-file", cert, "--peer-key-file", key, "--peer-auto-tls"},
			want: `flag --peer-auto-tls: peer-transport-security.auto-tls: conflicts with cert-file: use generated or given certificates, not both`,
			kind: ErrConflict,
		},
		{
			name: "certificate file missing",
			args: []string{"--listen-client-urls", "https://127.0.0.1:2379", "--cert-file", cert + ".missing", "--key-file", key},
			want: `flag --cert-file: client-transport-security.cert-file: "` + cert + `.missing": no such file or directory`,
			kind: ErrBadValue,
		},
		{
			name: "CA is a directory",
			args: []string{"--listen-client-urls", "https://127.0.0.1:2379", "--cert-file", cert, "--key-file", key, "--trusted-ca-file", dir},
			want: `flag --trusted-ca-file: client-transport-security.trusted-ca-file: "` + dir + `" is a directory, not a file`,
			kind: ErrBadValue,
		},
		{
			name: "auth token as a secret",
			args: []string{"--auth-token", "hunter2"},
			want: `flag --auth-token: auth-token: want "simple" or "jwt,sign-method=...,pub-key=...,priv-key=...", got "hunter2" (auth-token chooses the kind of token the server issues; it is not a shared secret)`,
			kind: ErrBadValue,
		},
		{
			name: "jwt without a sign method",
			args: []string{"--auth-token", "jwt,pub-key=" + cert},
			want: `flag --auth-token: auth-token: jwt sign-method: want one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, got ""`,
			kind: ErrBadValue,
		},
		{
			name: "jwt HMAC without its key",
			args: []string{"--auth-token", "jwt,sign-method=HS256,pub-key=" + cert},
			want: `flag --auth-token: auth-token: jwt sign-method HS256 needs priv-key (the shared HMAC key file)`,
			kind: ErrBadValue,
		},
		{
			name: "revision compaction with a duration",
			args: []string{"--auto-compaction-mode", "revision", "--auto-compaction-retention", "1h"},
			want: `flag --auto-compaction-retention: auto-compaction-retention: want a non-negative number of revisions in revision mode, got "1h"`,
			kind: ErrBadValue,
		},
		{
			name: "unknown compaction mode",
			args: []string{"--auto-compaction-mode", "hourly"},
			want: `flag --auto-compaction-mode: auto-compaction-mode: want "periodic" or "revision", got "hourly"`,
			kind: ErrBadValue,
		},
		{
			name: "log level",
			args: []string{"--log-level", "verbose"},
			want: `flag --log-level: log-level: want debug, info, warn or error, got "verbose"`,
			kind: ErrBadValue,
		},
		{
			name: "TLS versions upside down",
			args: []string{"--tls-min-version", "TLS1.3", "--tls-max-version", "TLS1.2"},
			want: `flag --tls-max-version: tls-max-version: TLS1.2 is below tls-min-version TLS1.3`,
			kind: ErrConflict,
		},
		{
			name: "cipher suite typo",
			args: []string{"--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265"},
			want: `flag --cipher-suites: cipher-suites: unknown cipher suite "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA265" (did you mean "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"?)`,
			kind: ErrBadValue,
		},
		{
			name: "insecure cipher suite",
			args: []string{"--cipher-suites", "TLS_RSA_WITH_RC4_128_SHA"},
			want: `flag --cipher-suites: cipher-suites: TLS_RSA_WITH_RC4_128_SHA is insecure`,
			kind: ErrBadValue,
		},
		{
			name: "name that initial-cluster cannot hold",
			args: []string{"--name", "a,b"},
			want: `flag --name: name: "a,b" has a comma, '=' or space, which initial-cluster cannot hold`,
			kind: ErrBadValue,
		},
		{
			name: "dev mode joining a cluster",
			args: []string{"--dev", "--data-dir", "/nonexistent/dev", "--initial-cluster-state", "existing"},
			want: `flag --initial-cluster-state: initial-cluster: initial-cluster-state is existing, but initial-cluster lists only this member: list the running members too (as "member add" prints them)` + "\n" +
				`flag --initial-cluster-state: initial-cluster-state: dev mode bootstraps a new one-node cluster; want "new"`,
			kind: ErrConflict,
		},
		{
			name: "bcrypt cost",
			args: []string{"--bcrypt-cost", "3"},
			want: `flag --bcrypt-cost: bcrypt-cost: want 4 to 31, got 3`,
			kind: ErrBadValue,
		},
		{
			name: "negative keepalive",
			args: []string{"--grpc-keepalive-timeout=-1s"},
			want: `flag --grpc-keepalive-timeout: grpc-keepalive-timeout: must not be negative, got -1s`,
			kind: ErrBadValue,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args, tt.env)
			if err == nil {
				t.Fatalf("no error; want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error is not %v", tt.kind)
			}
		})
	}
}

func TestValidClusterConfigs(t *testing.T) {
	tests := [][]string{
		// A member of a three-node cluster on one machine, as README shows.
		{"--name", "n2", "--listen-client-urls", "http://127.0.0.1:22379", "--listen-peer-urls", "http://127.0.0.1:22380",
			"--initial-cluster", "n1=http://127.0.0.1:2380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380",
			"--initial-cluster-token", "tok", "--initial-cluster-state", "new"},
		// Joining an existing cluster.
		{"--name", "n4", "--listen-peer-urls", "http://127.0.0.1:42380", "--initial-cluster-state", "existing",
			"--initial-cluster", "n1=http://127.0.0.1:2380,n4=http://127.0.0.1:42380"},
		// Listening everywhere, advertising an address.
		{"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://node1.example:2379"},
		// Negative quota: no quota, as in etcd.
		{"--quota-backend-bytes", "-1"},
		// Ports chosen by the kernel, for tests.
		{"--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0"},
	}
	for _, args := range tests {
		if _, err := Parse(args, nil); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestValidateGoConfig checks Validate on a Config built in Go: no origins,
// so messages carry the key only.
func TestValidateGoConfig(t *testing.T) {
	c := DefaultConfig()
	c.Raft.ElectionTimeout = 200 * time.Millisecond
	c.Store.MaxTxnOps = 0
	c.Network.ListenClientURLs = []string{"http://localhost"}
	err := c.Validate()
	want := strings.Join([]string{
		`listen-client-urls: "http://localhost" has no port (want scheme://host:port)`,
		`election-timeout: 200 ms is less than 5 × heartbeat-interval (100 ms): raise it to at least 500`,
		`max-txn-ops: want at least 1, got 0`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant:\n%s", err, want)
	}
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "listen-client-urls" || ke.Where != "" {
		t.Errorf("first KeyError = %+v", ke)
	}
}
