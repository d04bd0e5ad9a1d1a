package agent

import (
	"errors"
	"testing"
)

func TestEnv(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin",
		"CONCORD_NAME=env-node",
		"CONCORD_DATA_DIR=/srv/env",
		"CONCORD_HEARTBEAT_INTERVAL=50",
		"CONCORD_ELECTION_TIMEOUT=600",
		"CONCORD_LISTEN_CLIENT_URLS=http://127.0.0.1:12379,http://10.0.0.5:12379",
		"CONCORD_CERT_FILE=",                         // empty counts as unset
		"CONCORD_ENDPOINTS=x:1",                      // the client commands' variable
		"CONCORD_FENCING_TOKEN=7",                    // set by `concord lock` for its child
		"CONCORD_NAME=shadowed",                      // the first wins, as with os.Getenv
		"CONCORD_INITIAL_ELECTION_TICK_ADVANCE=true", // etcd's default of an unsupported option
		"CONCORD_DEV=false",
	}
	c, err := Parse(nil, environ)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "env-node" || c.DataDir != "/srv/env" || c.Raft.HeartbeatInterval.Milliseconds() != 50 ||
		c.Raft.ElectionTimeout.Milliseconds() != 600 || len(c.Network.AdvertiseClientURLs) != 2 {
		t.Errorf("env not applied: %+v", c)
	}
	if got := c.Origin("data-dir"); got != "env CONCORD_DATA_DIR" {
		t.Errorf("origin %q", got)
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    string
		kind    error
	}{
		{
			name:    "misspelt variable",
			environ: []string{"CONCORD_DATADIR=/srv"},
			want:    `env CONCORD_DATADIR: unknown variable (did you mean CONCORD_DATA_DIR?)`,
			kind:    ErrUnknownKey,
		},
		{
			name:    "unknown variable",
			environ: []string{"CONCORD_COLOUR=blue"},
			want:    `env CONCORD_COLOUR: unknown variable (the agent reads CONCORD_<FLAG_NAME>, e.g. CONCORD_DATA_DIR for --data-dir)`,
			kind:    ErrUnknownKey,
		},
		{
			name:    "malformed value",
			environ: []string{"CONCORD_HEARTBEAT_INTERVAL=fast"},
			want:    `env CONCORD_HEARTBEAT_INTERVAL: heartbeat-interval: want an integer (milliseconds), got "fast"`,
			kind:    ErrBadValue,
		},
		{
			name:    "boolean",
			environ: []string{"CONCORD_ENABLE_PPROF=yes"},
			want:    `env CONCORD_ENABLE_PPROF: enable-pprof: want true or false, got "yes"`,
			kind:    ErrBadValue,
		},
		{
			name:    "unsupported etcd option",
			environ: []string{"CONCORD_UNSAFE_NO_FSYNC=true"},
			want:    `env CONCORD_UNSAFE_NO_FSYNC: unsafe-no-fsync: etcd option not supported by Concord (Concord always syncs its log); remove it or set it to etcd's default, false`,
			kind:    ErrUnsupported,
		},
		{
			name:    "nested key by its flag name",
			environ: []string{"CONCORD_PEER_AUTO_TLS=maybe"},
			want:    `env CONCORD_PEER_AUTO_TLS: peer-transport-security.auto-tls: want true or false, got "maybe"`,
			kind:    ErrBadValue,
		},
		{
			name:    "sorted by variable",
			environ: []string{"CONCORD_ZZZ=1", "CONCORD_AAA=1"},
			want: `env CONCORD_AAA: unknown variable (the agent reads CONCORD_<FLAG_NAME>, e.g. CONCORD_DATA_DIR for --data-dir)` + "\n" +
				`env CONCORD_ZZZ: unknown variable (the agent reads CONCORD_<FLAG_NAME>, e.g. CONCORD_DATA_DIR for --data-dir)`,
			kind: ErrUnknownKey,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(nil, tt.environ)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error is not %v", tt.kind)
			}
		})
	}
}

func TestEnvNamesFollowFlags(t *testing.T) {
	idx := newKeyIndex()
	for _, tt := range []struct{ key, env string }{
		{"data-dir", "CONCORD_DATA_DIR"},
		{"initial-advertise-peer-urls", "CONCORD_INITIAL_ADVERTISE_PEER_URLS"},
		{"client-transport-security.cert-file", "CONCORD_CERT_FILE"},
		{"peer-transport-security.trusted-ca-file", "CONCORD_PEER_TRUSTED_CA_FILE"},
		{"socket-options.reuse-address", "CONCORD_SOCKET_REUSE_ADDRESS"},
	} {
		if got := idx.byKey[tt.key].envName(); got != tt.env {
			t.Errorf("%s: env %s, want %s", tt.key, got, tt.env)
		}
	}
	// No two keys share a variable or a flag.
	if len(idx.byEnv) != len(idx.specs) || len(idx.byFlag) != len(idx.specs) || len(idx.byKey) != len(idx.specs) {
		t.Errorf("%d keys, %d env names, %d flags, %d YAML keys", len(idx.specs), len(idx.byEnv), len(idx.byFlag), len(idx.byKey))
	}
}
