package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newMemberCommand returns `concord member`: list, add, remove, update and
// promote, with etcdctl's output. Member IDs are hex, as printed.
func newMemberCommand(o *globalOptions) *cobra.Command {
	mc := &cobra.Command{
		Use:   "member <subcommand>",
		Short: "Membership commands: list, add, remove, update, promote",
	}
	mc.AddCommand(
		newMemberAddCommand(o),
		newMemberRemoveCommand(o),
		newMemberUpdateCommand(o),
		newMemberListCommand(o),
		newMemberPromoteCommand(o),
	)
	return o.attach(mc)
}

func newMemberAddCommand(o *globalOptions) *cobra.Command {
	var peerURLs string
	var learner bool
	cmd := &cobra.Command{
		Use:   "add <memberName> [options]",
		Short: "Adds a member into the cluster",
		Long: `Adds a member into the cluster and prints the settings the new member
starts with, as ETCD_* lines (etcdctl's) and as CONCORD_* lines for
concord agent.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return badArgs("member name not provided")
			}
			if len(args) > 1 {
				msg := "too many arguments"
				for _, a := range args {
					if strings.HasPrefix(strings.ToLower(a), "http") {
						msg += fmt.Sprintf(", did you mean --peer-urls=%s", a)
					}
				}
				return withCode(exitBadArgs, errors.New(msg))
			}
			name := args[0]
			if peerURLs == "" {
				return badArgs("member peer urls not provided")
			}
			p, err := o.printerFor(cmd, respMemberAdd)
			if err != nil {
				return err
			}
			cli, err := o.client(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			urls := strings.Split(peerURLs, ",")
			ctx, cancel := o.commandCtx(cmd)
			defer cancel()
			var resp *clientv3.MemberAddResponse
			if learner {
				resp, err = cli.MemberAddAsLearner(ctx, urls)
			} else {
				resp, err = cli.MemberAdd(ctx, urls)
			}
			if err != nil {
				return err
			}
			if err := p.MemberAdd(resp); err != nil {
				return err
			}
			if _, simple := p.(*simplePrinter); simple {
				writeMemberEnv(cmd, name, peerURLs, resp)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma separated peer URLs for the new member.")
	cmd.Flags().BoolVar(&learner, "learner", false, "indicates if the new member is raft learner")
	return cmd
}

// writeMemberEnv prints how to start the member just added: etcdctl's
// ETCD_* lines, then the same settings as concord agent reads them.
func writeMemberEnv(cmd *cobra.Command, name, peerURLs string, resp *clientv3.MemberAddResponse) {
	var initial []string
	for _, m := range resp.Members {
		n := m.GetName()
		if m.GetID() == resp.Member.GetID() {
			n = name
		}
		for _, u := range m.GetPeerURLs() {
			initial = append(initial, n+"="+u)
		}
	}
	w := cmd.OutOrStdout()
	for _, prefix := range []string{"ETCD_", envPrefix} {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%sNAME=%q\n", prefix, name)
		fmt.Fprintf(w, "%sINITIAL_CLUSTER=%q\n", prefix, strings.Join(initial, ","))
		fmt.Fprintf(w, "%sINITIAL_ADVERTISE_PEER_URLS=%q\n", prefix, peerURLs)
		fmt.Fprintf(w, "%sINITIAL_CLUSTER_STATE=\"existing\"\n", prefix)
	}
}

func newMemberRemoveCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove <memberID>",
		Short: "Removes a member from the cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badArgs("member ID is not provided")
			}
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respMemberRemove)
			if err != nil {
				return err
			}
			resp, err := request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberRemoveResponse, error) {
				return cli.MemberRemove(ctx, id)
			})
			if err != nil {
				return err
			}
			return p.MemberRemove(id, resp)
		},
	}
}

func newMemberUpdateCommand(o *globalOptions) *cobra.Command {
	var peerURLs string
	cmd := &cobra.Command{
		Use:   "update <memberID> [options]",
		Short: "Updates a member in the cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badArgs("member ID is not provided")
			}
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			if peerURLs == "" {
				return badArgs("member peer urls not provided")
			}
			p, err := o.printerFor(cmd, respMemberUpdate)
			if err != nil {
				return err
			}
			resp, err := request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberUpdateResponse, error) {
				return cli.MemberUpdate(ctx, id, strings.Split(peerURLs, ","))
			})
			if err != nil {
				return err
			}
			return p.MemberUpdate(id, resp)
		},
	}
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma separated peer URLs for the updated member.")
	return cmd
}

func newMemberListCommand(o *globalOptions) *cobra.Command {
	var consistency string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Lists all members in the cluster",
		Long: `When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return badArgs("member list command does not accept argument")
			}
			s, err := serializable(consistency)
			if err != nil {
				return err
			}
			var opts []clientv3.OpOption
			if s {
				opts = append(opts, clientv3.WithSerializable())
			}
			p, err := o.printerFor(cmd, respMemberList)
			if err != nil {
				return err
			}
			resp, err := request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberListResponse, error) {
				return cli.MemberList(ctx, opts...)
			})
			if err != nil {
				return err
			}
			return p.MemberList(resp)
		},
	}
	cmd.Flags().StringVar(&consistency, "consistency", "l", "Linearizable(l) or Serializable(s)")
	return cmd
}

func newMemberPromoteCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "promote <memberID>",
		Short: "Promotes a non-voting member in the cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badArgs("member ID is not provided")
			}
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respMemberPromote)
			if err != nil {
				return err
			}
			resp, err := request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberPromoteResponse, error) {
				return cli.MemberPromote(ctx, id)
			})
			if err != nil {
				return err
			}
			return p.MemberPromote(id, resp)
		},
	}
}
