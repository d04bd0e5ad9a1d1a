package agent

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--lisen-client-urls", "http://127.0.0.1:2379"}, `unknown flag: --lisen-client-urls (did you mean --listen-client-urls?)`},
		{[]string{"--frobnicate"}, `unknown flag: --frobnicate`},
		{[]string{"--heartbeat-interval", "fast"}, `invalid argument "fast" for "--heartbeat-interval" flag: want an integer (milliseconds), got "fast"`},
		{[]string{"--grpc-keepalive-timeout", "20"}, `invalid argument "20" for "--grpc-keepalive-timeout" flag: want a duration with a unit, such as "20s", got "20"`},
		{[]string{"--name"}, `flag needs an argument: --name`},
		{[]string{"extra"}, `unexpected argument "extra": the agent takes only flags`},
		{[]string{"--force-new-cluster"}, `flag --force-new-cluster: force-new-cluster: etcd option not supported by Concord (forcing a new cluster from existing data is not implemented); remove it or set it to etcd's default, false`},
		{[]string{"--discovery-srv", "example.com"}, `flag --discovery-srv: discovery-srv: etcd option not supported by Concord (discovery is not implemented; list the members in initial-cluster); remove it`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.args, nil)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%v:\n got %v\nwant %s", tt.args, err, tt.want)
		}
	}
	if _, err := Parse([]string{"--help"}, nil); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

func TestUnsupportedFlagsAcceptEtcdDefaults(t *testing.T) {
	args := []string{
		"--initial-election-tick-advance=true", "--max-wals", "5", "--force-new-cluster=false",
		"--log-outputs", "stderr", "--metrics", "basic", "--cors", "*", "--compact-hash-check-time", "1m0s",
		"--discovery-srv", "", "--v2-deprecation", "write-only",
	}
	if _, err := Parse(args, nil); err != nil {
		t.Fatal(err)
	}
}

func TestBoolFlags(t *testing.T) {
	c, err := Parse([]string{"--enable-pprof", "--strict-reconfig-check=false", "--peer-auto-tls=false"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Metrics.EnablePprof || c.Cluster.StrictReconfigCheck {
		t.Errorf("enable-pprof %v, strict-reconfig-check %v", c.Metrics.EnablePprof, c.Cluster.StrictReconfigCheck)
	}
}

// TestCobra wires the flags the way `concord agent` does: BindFlags on the
// command's flag set, FromFlags in RunE.
func TestCobra(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("c.yml", []byte("name: from-file\nmax-txn-ops: 64\nlog-level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got Config
	newCmd := func() *cobra.Command {
		scratch := DefaultConfig()
		cmd := &cobra.Command{
			Use:           "agent",
			Args:          cobra.NoArgs,
			SilenceUsage:  true,
			SilenceErrors: true,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var err error
				got, err = FromFlags(cmd.Flags(), []string{"CONCORD_LOG_LEVEL=error"})
				return err
			},
		}
		BindFlags(cmd.Flags(), &scratch)
		return cmd
	}

	cmd := newCmd()
	cmd.SetArgs([]string{"--config-file", "c.yml", "--name", "from-flag", "--heartbeat-interval=20", "--election-timeout", "200"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Name != "from-flag" || got.Store.MaxTxnOps != 64 || got.Log.Level != "error" || got.Raft.HeartbeatInterval.Milliseconds() != 20 {
		t.Errorf("cobra: name %q, max-txn-ops %d, log-level %q, heartbeat %v", got.Name, got.Store.MaxTxnOps, got.Log.Level, got.Raft.HeartbeatInterval)
	}

	cmd = newCmd()
	cmd.SetArgs([]string{"--election-timeout", "200"})
	err := cmd.Execute()
	want := `flag --election-timeout: election-timeout: 200 ms is less than 5 × heartbeat-interval (100 ms): raise it to at least 500`
	if err == nil || err.Error() != want {
		t.Errorf("cobra error:\n%v\nwant %s", err, want)
	}

	// cobra's flag errors get the same suggestion through FlagError.
	cmd = newCmd()
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return FlagError(err) })
	cmd.SetArgs([]string{"--snapshot-cont", "5"})
	if err := cmd.Execute(); err == nil || err.Error() != "unknown flag: --snapshot-cont (did you mean --snapshot-count?)" {
		t.Errorf("cobra unknown flag: %v", err)
	}

	// --help lists the supported flags with etcd's help and our defaults,
	// and hides the etcd options Concord refuses.
	usage := newCmd().Flags().FlagUsages()
	for _, line := range []string{
		`--data-dir string`, `Path to the data directory. (default "<name>.etcd")`,
		`--heartbeat-interval milliseconds`, `(default 100)`,
		`--grpc-keepalive-interval duration`, `(default 2h)`,
		`--listen-client-urls strings`, `(default http://localhost:2379)`,
		`--peer-cert-file string`,
		`--config-file string`,
		`--dev `,
	} {
		if !strings.Contains(usage, line) {
			t.Errorf("--help lacks %q", line)
		}
	}
	if strings.Contains(usage, "force-new-cluster") {
		t.Error("--help shows an unsupported etcd flag")
	}
}
