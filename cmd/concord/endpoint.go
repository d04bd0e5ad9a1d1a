package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// newEndpointCommand returns `concord endpoint`: health, status and hashkv
// of each endpoint, with etcdctl's output.
func newEndpointCommand(o *globalOptions) *cobra.Command {
	var cluster bool
	ec := &cobra.Command{
		Use:   "endpoint <subcommand>",
		Short: "Endpoint commands: health, status, hashkv",
	}
	ec.PersistentFlags().BoolVar(&cluster, "cluster", false, "use all endpoints from the cluster member list")
	targets := func(cmd *cobra.Command) ([]string, error) { return o.endpointTargets(cmd, cluster) }
	ec.AddCommand(newEpHealthCommand(o, targets), newEpStatusCommand(o, targets), newEpHashKVCommand(o, targets))
	return o.attach(ec)
}

// endpointTargets returns the endpoints to report on: --endpoints, or with
// --cluster every member's client URLs from the member list.
func (o *globalOptions) endpointTargets(cmd *cobra.Command, cluster bool) ([]string, error) {
	if !cluster {
		return o.endpoints, nil
	}
	cli, err := o.client(cmd)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := o.commandCtx(cmd)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to fetch endpoints from the cluster member list: %w", err)
	}
	var eps []string
	for _, m := range resp.Members {
		eps = append(eps, m.ClientURLs...)
	}
	return eps, nil
}

func newEpHealthCommand(o *globalOptions, targets func(*cobra.Command) ([]string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Checks the healthiness of endpoints specified in `--endpoints` flag",
		Long: `Checks each endpoint with a linearizable read, which commits through
consensus, and with the alarm list. Exits non-zero if any is unhealthy.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := o.printerFor(cmd, respEndpointHealth)
			if err != nil {
				return err
			}
			eps, err := targets(cmd)
			if err != nil {
				return err
			}
			hs := make([]epHealth, len(eps))
			var wg sync.WaitGroup
			for i, ep := range eps {
				wg.Go(func() { hs[i] = o.checkHealth(cmd, ep) })
			}
			wg.Wait()
			if err := p.EndpointHealth(hs); err != nil {
				return err
			}
			for _, h := range hs {
				if h.Error != "" {
					return errors.New("unhealthy cluster")
				}
			}
			return nil
		},
	}
}

// checkHealth checks one endpoint as etcdctl does: a linearizable read
// (permission denied counts as healthy: the read went through consensus to
// be refused), then no active alarm.
func (o *globalOptions) checkHealth(cmd *cobra.Command, ep string) epHealth {
	cli, err := o.clientOf(cmd, []string{ep})
	if err != nil {
		return epHealth{Ep: ep, Error: err.Error()}
	}
	defer cli.Close()
	ctx, cancel := o.commandCtx(cmd)
	defer cancel()
	start := time.Now()
	_, err = cli.Get(ctx, "health")
	h := epHealth{Ep: ep, Took: time.Since(start).String()}
	if err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		h.Error = err.Error()
		return h
	}
	alarms, err := cli.AlarmList(ctx)
	switch {
	case err != nil:
		h.Error = "Unable to fetch the alarm list"
	case len(alarms.Alarms) > 0:
		h.Error = "Active Alarm(s): "
		for _, a := range alarms.Alarms {
			switch a.Alarm {
			case pb.AlarmType_NOSPACE:
				h.Error += "NOSPACE "
			case pb.AlarmType_CORRUPT:
				h.Error += "CORRUPT "
			default:
				h.Error += "UNKNOWN "
			}
		}
	default:
		h.Health = true
	}
	return h
}

func newEpStatusCommand(o *globalOptions, targets func(*cobra.Command) ([]string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Prints out the status of endpoints specified in `--endpoints` flag",
		Long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, storage version, db size, in use, percentage not in use, quota,
is leader, is learner, raft term, raft index, raft applied index, errors, downgrade target version, downgrade enabled.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := o.printerFor(cmd, respEndpointStatus)
			if err != nil {
				return err
			}
			eps, err := targets(cmd)
			if err != nil {
				return err
			}
			var sts []epStatus
			var lastErr error
			for _, ep := range eps {
				st, err := o.status(cmd, ep)
				if err != nil {
					lastErr = err
					fmt.Fprintf(cmd.ErrOrStderr(), "Failed to get the status of endpoint %s (%v)\n", ep, err)
					continue
				}
				sts = append(sts, st)
			}
			if err := p.EndpointStatus(sts); err != nil {
				return err
			}
			return lastErr
		},
	}
}

func (o *globalOptions) status(cmd *cobra.Command, ep string) (epStatus, error) {
	cli, err := o.clientOf(cmd, []string{ep})
	if err != nil {
		return epStatus{}, err
	}
	defer cli.Close()
	ctx, cancel := o.commandCtx(cmd)
	defer cancel()
	resp, err := cli.Status(ctx, ep)
	if err != nil {
		return epStatus{}, err
	}
	return epStatus{Ep: ep, Resp: resp}, nil
}

func newEpHashKVCommand(o *globalOptions, targets func(*cobra.Command) ([]string, error)) *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:   "hashkv",
		Short: "Prints the KV history hash for each endpoint in --endpoints",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := o.printerFor(cmd, respEndpointHashKV)
			if err != nil {
				return err
			}
			eps, err := targets(cmd)
			if err != nil {
				return err
			}
			var hs []epHashKV
			var lastErr error
			for _, ep := range eps {
				h, err := o.hashKV(cmd, ep, rev)
				if err != nil {
					lastErr = err
					fmt.Fprintf(cmd.ErrOrStderr(), "Failed to get the hash of endpoint %s (%v)\n", ep, err)
					continue
				}
				hs = append(hs, h)
			}
			if err := p.EndpointHashKV(hs); err != nil {
				return err
			}
			return lastErr
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "maximum revision to hash (default: latest revision)")
	return cmd
}

func (o *globalOptions) hashKV(cmd *cobra.Command, ep string, rev int64) (epHashKV, error) {
	cli, err := o.clientOf(cmd, []string{ep})
	if err != nil {
		return epHashKV{}, err
	}
	defer cli.Close()
	ctx, cancel := o.commandCtx(cmd)
	defer cancel()
	resp, err := cli.HashKV(ctx, ep, rev)
	if err != nil {
		return epHashKV{}, err
	}
	return epHashKV{Ep: ep, Resp: resp}, nil
}
