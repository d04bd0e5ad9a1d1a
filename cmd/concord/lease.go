package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newLeaseCommand returns `concord lease`: grant, revoke, timetolive, list
// and keep-alive, with etcdctl's output. Lease IDs are hex, as printed.
func newLeaseCommand(o *globalOptions) *cobra.Command {
	lc := &cobra.Command{
		Use:   "lease <subcommand>",
		Short: "Lease commands: grant, revoke, keep-alive, timetolive, list",
	}
	lc.AddCommand(
		newLeaseGrantCommand(o),
		newLeaseRevokeCommand(o),
		newLeaseTimeToLiveCommand(o),
		newLeaseListCommand(o),
		newLeaseKeepAliveCommand(o),
	)
	return o.attach(lc)
}

// leaseArg parses the lease ID argument of a lease command.
func leaseArg(arg string) (clientv3.LeaseID, error) {
	id, err := parseLeaseID(arg)
	if err != nil {
		return 0, badArgs("bad lease ID arg (%w), expecting ID in Hex", err)
	}
	return id, nil
}

func newLeaseGrantCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "grant <ttl>",
		Short: "Creates leases",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badArgs("lease grant command needs TTL argument")
			}
			ttl, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return badArgs("bad TTL (%w)", err)
			}
			p, err := o.printerFor(cmd, respGrant)
			if err != nil {
				return err
			}
			resp, err := request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.LeaseGrantResponse, error) {
				return cli.Grant(ctx, ttl)
			})
			if err != nil {
				return fmt.Errorf("failed to grant lease (%w)", err)
			}
			return p.Grant(resp)
		},
	}
}

func newLeaseRevokeCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke <leaseID>",
		Short: "Revokes leases",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badArgs("lease revoke command needs 1 argument")
			}
			id, err := leaseArg(args[0])
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respRevoke)
			if err != nil {
				return err
			}
			resp, err := request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.LeaseRevokeResponse, error) {
				return cli.Revoke(ctx, id)
			})
			if err != nil {
				return fmt.Errorf("failed to revoke lease (%w)", err)
			}
			return p.Revoke(id, resp)
		},
	}
}

func newLeaseTimeToLiveCommand(o *globalOptions) *cobra.Command {
	var keys bool
	cmd := &cobra.Command{
		Use:   "timetolive <leaseID> [options]",
		Short: "Get lease information",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badArgs("lease timetolive command needs lease ID as argument")
			}
			id, err := leaseArg(args[0])
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respTimeToLive)
			if err != nil {
				return err
			}
			cli, err := o.client(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			var opts []clientv3.LeaseOption
			if keys {
				opts = append(opts, clientv3.WithAttachedKeys())
			}
			ctx, cancel := o.commandCtx(cmd)
			defer cancel()
			resp, err := cli.TimeToLive(ctx, id, opts...)
			if err != nil {
				return withCode(exitBadConnection, err)
			}
			return p.TimeToLive(resp, keys)
		},
	}
	cmd.Flags().BoolVar(&keys, "keys", false, "Get keys attached to this lease")
	return cmd
}

func newLeaseListCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List all active leases",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return badArgs("lease list command does not accept argument")
			}
			p, err := o.printerFor(cmd, respLeases)
			if err != nil {
				return err
			}
			resp, err := request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.LeaseLeasesResponse, error) {
				return cli.Leases(ctx)
			})
			if err != nil {
				return withCode(exitBadConnection, err)
			}
			return p.Leases(resp)
		},
	}
}

func newLeaseKeepAliveCommand(o *globalOptions) *cobra.Command {
	var once bool
	cmd := &cobra.Command{
		Use:   "keep-alive [options] <leaseID>",
		Short: "Keeps leases alive (renew)",
		Long: `Keeps a lease alive until interrupted, printing each renewal; with --once,
renews it once and exits.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badArgs("lease keep-alive command needs lease ID as argument")
			}
			id, err := leaseArg(args[0])
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respKeepAlive)
			if err != nil {
				return err
			}
			cli, err := o.client(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			if once {
				ctx, cancel := o.commandCtx(cmd)
				defer cancel()
				resp, err := cli.KeepAliveOnce(ctx, id)
				if err != nil {
					return withCode(exitBadConnection, err)
				}
				return p.KeepAlive(resp)
			}
			respc, err := cli.KeepAlive(cmd.Context(), id)
			if err != nil {
				return withCode(exitBadConnection, err)
			}
			for resp := range respc {
				if err := p.KeepAlive(resp); err != nil {
					return err
				}
			}
			if cmd.Context().Err() != nil {
				return nil // interrupted: the lease is still alive
			}
			if _, simple := p.(*simplePrinter); simple {
				fmt.Fprintf(cmd.OutOrStdout(), "lease %016x expired or revoked.\n", id)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "Resets the keep-alive time to its original value and exits immediately")
	return cmd
}
