package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/election"
	"github.com/concordkv/concord/session"
)

// defaultElectTTL is `elect --ttl`'s default: the session TTL etcdctl
// elect campaigns with (concurrency's default).
const defaultElectTTL = 60 * time.Second

// newElectCommand returns `concord elect NAME VALUE` and `concord elect
// --listen NAME`, with etcdctl elect's arguments and output.
func newElectCommand(o *globalOptions) *cobra.Command {
	var listen bool
	ttl := defaultElectTTL
	cmd := &cobra.Command{
		Use:   "elect <election-name> [proposal]",
		Short: "Campaigns in a leader election until interrupted, or observes it (-l)",
		Long: `With a proposal, campaigns in the election NAME (etcdctl elect's and etcd's
concurrency.Election's layout: candidates NAME/<lease-hex>, elected oldest
first), prints the leader's key and value once elected, holds the
leadership until interrupted (SIGINT, SIGTERM) and then resigns. A
leadership lost meanwhile (session expired, key deleted) is reported with
exit code 1.

With -l, prints the leader's key and value now and at every change of
leader or of its value, until interrupted.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 && len(args) != 2 {
				return badArgs("elect takes one election name argument and an optional proposal argument")
			}
			if len(args) == 1 && !listen {
				return badArgs("no proposal argument but -l not set")
			}
			if len(args) == 2 && listen {
				return badArgs("proposal given but -l is set")
			}
			p, err := o.printerFor(cmd, respGet)
			if err != nil {
				return err
			}
			cli, err := o.client(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			if listen {
				return observeElection(cmd, p, cli, args[0])
			}
			return campaign(cmd, o, p, cli, args[0], args[1], ttl)
		},
	}
	cmd.Flags().BoolVarP(&listen, "listen", "l", false, "observation mode: print every leader")
	cmd.Flags().Var(ttlValue{&ttl}, "ttl", "session TTL: how long the leadership outlives this process if it dies (seconds, or a duration such as 10s)")
	return o.attach(cmd)
}

// campaign campaigns with value, prints the leader's key-value once
// elected, and resigns when interrupted.
func campaign(cmd *cobra.Command, o *globalOptions, p printer, cli *clientv3.Client, name, value string, ttl time.Duration) error {
	ctx, cancel := o.commandCtx(cmd)
	s, err := session.New(ctx, cli, session.WithTTL(ttl))
	cancel()
	if err != nil {
		return fmt.Errorf("elect %s: start session: %w", name, err)
	}
	// Revoking the lease on the way out withdraws the candidacy even if
	// the Resign below failed.
	defer func() {
		ctx, cancel := o.commandCtx(cmd)
		defer cancel()
		s.Close(context.WithoutCancel(ctx))
	}()
	l, err := election.New(s, name).Campaign(cmd.Context(), value)
	if err != nil {
		if cmd.Context().Err() != nil {
			return fmt.Errorf("elect %s: interrupted while campaigning", name)
		}
		return fmt.Errorf("elect %s: %w", name, err)
	}
	gctx, cancel := o.commandCtx(cmd)
	resp, err := cli.Get(gctx, l.Key())
	cancel()
	if err != nil {
		return fmt.Errorf("elect %s: read the leader's key: %w", name, err)
	}
	if err := p.Get(resp); err != nil {
		return err
	}
	select {
	case <-cmd.Context().Done():
	case <-l.Done():
		return fmt.Errorf("elect %s: leadership lost: %w", name, l.Err())
	}
	rctx, cancel := o.commandCtx(cmd)
	defer cancel()
	if err := l.Resign(context.WithoutCancel(rctx)); err != nil && !errors.Is(err, election.ErrNotLeader) {
		return fmt.Errorf("elect %s: resign: %w", name, err)
	}
	return nil
}

// observeElection prints the leader's key-value at every change until
// interrupted. A state without a leader prints nothing, as with etcdctl.
func observeElection(cmd *cobra.Command, p printer, cli *clientv3.Client, name string) error {
	ctx := cmd.Context()
	for li := range election.Observe(ctx, cli, name) {
		if !li.HasLeader() {
			continue
		}
		hdr, kv, err := li.KeyValue(ctx, cli)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("elect %s: read the leader's key: %w", name, err)
		}
		if err := p.Get(&clientv3.GetResponse{Header: hdr, Kvs: []*mvccpb.KeyValue{kv}, Count: 1}); err != nil {
			return err
		}
	}
	return nil
}
