package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newLockListCommand returns `concord lock list NAME`: the lock's holder
// and waiters, oldest first.
func newLockListCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list <name>",
		Short: "Lists a lock's holder and waiters, oldest first",
		Long: `Lists the participants of the lock NAME (every key under NAME/), in the
order they are served: the holder first, then the waiters. Each row is the
key, its fencing token (create revision), its lease (hex), "holder" or
"waiting", and the key's value (concord lock stores host:pid there).
-w table draws the same rows as a table; -w json and -w fields print the
keys as "kv get --prefix NAME/ --sort-by=CREATE" would.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badArgs("lock list takes one lock name argument")
			}
			var p printer
			if o.writeOut != "simple" && o.writeOut != "table" {
				var err error
				if p, err = o.printerFor(cmd, respGet); err != nil {
					return err
				}
			}
			resp, err := request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (*clientv3.GetResponse, error) {
				return cli.Get(ctx, args[0]+"/", clientv3.WithPrefix(),
					clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
			})
			if err != nil {
				return err
			}
			if p != nil {
				return p.Get(resp)
			}
			rows := lockRows(resp)
			if o.writeOut == "table" {
				writeTable(cmd.OutOrStdout(), []string{"key", "token", "lease", "role", "value"}, rows)
				return nil
			}
			for _, row := range rows {
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(row, ", "))
			}
			return nil
		},
	}
}

// lockRows returns one row per participant of a lock, oldest first.
func lockRows(resp *clientv3.GetResponse) [][]string {
	rows := make([][]string, 0, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		role := "waiting"
		if i == 0 {
			role = "holder"
		}
		rows = append(rows, []string{
			string(kv.Key),
			strconv.FormatInt(kv.CreateRevision, 10),
			fmt.Sprintf("%x", kv.Lease),
			role,
			string(kv.Value),
		})
	}
	return rows
}
