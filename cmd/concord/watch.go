package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchFlags are the flags of `kv watch`.
type watchFlags struct {
	rev            int64
	prefix         bool
	prevKV         bool
	progressNotify bool
}

func newWatchCommand(o *globalOptions) *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch [options] <key or prefix> [range_end] [--] [exec-command arg1 arg2 ...]",
		Short: "Watches events stream on keys or prefixes",
		Long: `Watches a key, a prefix or a range and prints every event until interrupted.

With "-- COMMAND ARGS...", runs COMMAND after printing each event, with the
event in its environment: ETCD_WATCH_REVISION, ETCD_WATCH_EVENT_TYPE,
ETCD_WATCH_KEY, ETCD_WATCH_VALUE (etcdctl's names), and the same values as
CONCORD_WATCH_*.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			watchArgs, execArgs := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				watchArgs, execArgs = args[:dash], args[dash:]
				if len(execArgs) == 0 {
					return badArgs("bad number of arguments (found separator --, but no commands)")
				}
			}
			if len(watchArgs) < 1 || len(watchArgs) > 2 {
				return badArgs("bad number of arguments")
			}
			opts := []clientv3.OpOption{clientv3.WithRev(f.rev)}
			if len(watchArgs) == 2 {
				if f.prefix {
					return badArgs("`range_end` and `--prefix` are mutually exclusive")
				}
				opts = append(opts, clientv3.WithRange(watchArgs[1]))
			}
			if f.prefix {
				opts = append(opts, clientv3.WithPrefix())
			}
			if f.prevKV {
				opts = append(opts, clientv3.WithPrevKV())
			}
			if f.progressNotify {
				opts = append(opts, clientv3.WithProgressNotify())
			}
			p, err := o.printerFor(cmd, respWatch)
			if err != nil {
				return err
			}
			cli, err := o.client(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			return printWatch(cmd, p, cli.Watch(clientv3.WithRequireLeader(cmd.Context()), watchArgs[0], opts...), execArgs)
		},
	}
	cmd.Flags().BoolVar(&f.prefix, "prefix", false, "Watch on a prefix if prefix is set")
	cmd.Flags().Int64Var(&f.rev, "rev", 0, "Revision to start watching")
	cmd.Flags().BoolVar(&f.prevKV, "prev-kv", false, "get the previous key-value pair before the event happens")
	cmd.Flags().BoolVar(&f.progressNotify, "progress-notify", false, "get periodic watch progress notification from server")
	return cmd
}

// printWatch prints the responses of wc until it closes, running execArgs
// (if any) once per event. It returns nil when the command's context ended
// it (an interrupt) and an exitInterrupted error when the server did.
func printWatch(cmd *cobra.Command, p printer, wc clientv3.WatchChan, execArgs []string) error {
	for resp := range wc {
		if resp.Canceled {
			fmt.Fprintf(cmd.ErrOrStderr(), "watch was canceled (%v)\n", resp.Err())
		}
		if resp.IsProgressNotify() {
			fmt.Fprintf(cmd.OutOrStdout(), "progress notify: %d\n", resp.Header.GetRevision())
		}
		if err := p.Watch(&resp); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			if len(execArgs) == 0 {
				break
			}
			if err := runWatchExec(cmd, execArgs, resp.Header.GetRevision(), ev); err != nil {
				return err
			}
		}
	}
	if cmd.Context().Err() != nil {
		return nil
	}
	return withCode(exitInterrupted, errors.New("watch is canceled by the server"))
}

// runWatchExec runs the command of `watch -- COMMAND` for one event.
func runWatchExec(cmd *cobra.Command, execArgs []string, rev int64, ev *clientv3.Event) error {
	c := exec.CommandContext(cmd.Context(), execArgs[0], execArgs[1:]...)
	c.Env = os.Environ()
	for _, prefix := range []string{"ETCD_WATCH_", "CONCORD_WATCH_"} {
		c.Env = append(c.Env,
			fmt.Sprintf("%sREVISION=%d", prefix, rev),
			fmt.Sprintf("%sEVENT_TYPE=%q", prefix, ev.Type),
			fmt.Sprintf("%sKEY=%q", prefix, ev.Kv.GetKey()),
			fmt.Sprintf("%sVALUE=%q", prefix, ev.Kv.GetValue()),
		)
	}
	c.Stdout, c.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
	if err := c.Run(); err != nil && cmd.Context().Err() == nil {
		return fmt.Errorf("command %q error (%w)", execArgs, err)
	}
	return nil
}
