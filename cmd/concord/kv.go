package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newKVCommand returns `concord kv`: put, get, del, txn and watch, with
// etcdctl's flags and output.
func newKVCommand(o *globalOptions) *cobra.Command {
	kv := &cobra.Command{
		Use:   "kv <subcommand>",
		Short: "Key-value commands: put, get, del, txn, watch",
	}
	kv.AddCommand(newPutCommand(o), newGetCommand(o), newDelCommand(o), newTxnCommand(o), newWatchCommand(o))
	return o.attach(kv)
}

// putFlags are the flags of `kv put`, also parsed inside txn requests.
type putFlags struct {
	lease       string
	prevKV      bool
	ignoreValue bool
	ignoreLease bool
}

func (f *putFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.lease, "lease", "0", "lease ID (in hexadecimal) to attach to the key")
	fs.BoolVar(&f.prevKV, "prev-kv", false, "return the previous key-value pair before modification")
	fs.BoolVar(&f.ignoreValue, "ignore-value", false, "updates the key using its current value")
	fs.BoolVar(&f.ignoreLease, "ignore-lease", false, "updates the key using its current lease")
}

// op builds the put of args (KEY [VALUE]); the value comes from stdin when
// it is not an argument and --ignore-value is not set.
func (f *putFlags) op(args []string, stdin io.Reader) (clientv3.Op, error) {
	if len(args) == 0 {
		return clientv3.Op{}, badArgs("put command needs 1 argument and input from stdin or 2 arguments")
	}
	key := args[0]
	if f.ignoreValue && len(args) > 1 {
		return clientv3.Op{}, badArgs("put command needs only 1 argument when 'ignore-value' is set")
	}
	if len(args) > 2 {
		return clientv3.Op{}, badArgs("put command needs 1 argument and input from stdin or 2 arguments")
	}
	var value string
	if !f.ignoreValue {
		v, err := argOrStdin(args, stdin, 1)
		if err != nil {
			return clientv3.Op{}, badArgs("put command needs 1 argument and input from stdin or 2 arguments")
		}
		value = v
	}
	id, err := parseLeaseID(f.lease)
	if err != nil {
		return clientv3.Op{}, badArgs("bad lease ID (%w), expecting ID in Hex", err)
	}
	var opts []clientv3.OpOption
	if id != 0 {
		opts = append(opts, clientv3.WithLease(id))
	}
	if f.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if f.ignoreValue {
		opts = append(opts, clientv3.WithIgnoreValue())
	}
	if f.ignoreLease {
		opts = append(opts, clientv3.WithIgnoreLease())
	}
	return clientv3.OpPut(key, value, opts...), nil
}

func newPutCommand(o *globalOptions) *cobra.Command {
	var f putFlags
	cmd := &cobra.Command{
		Use:   "put [options] <key> [value]",
		Short: "Puts the given key into the store",
		Long: `Puts the given key into the store.

If <value> isn't given as an argument and --ignore-value is not set, it is
read from standard input: "cat file | concord kv put <key>" stores the file.
When <value> begins with '-', put "--" before the arguments:
"concord kv put -- <key> -<value>".`,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := f.op(args, cmd.InOrStdin())
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respPut)
			if err != nil {
				return err
			}
			resp, err := o.do(cmd, op)
			if err != nil {
				return err
			}
			return p.Put(resp.Put())
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// getFlags are the flags of `kv get`, also parsed inside txn requests.
type getFlags struct {
	consistency    string
	order          string
	sortBy         string
	limit          int64
	prefix         bool
	fromKey        bool
	rev            int64
	keysOnly       bool
	countOnly      bool
	printValueOnly bool
	minCreateRev   int64
	maxCreateRev   int64
	minModRev      int64
	maxModRev      int64
}

func (f *getFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.consistency, "consistency", "l", "Linearizable(l) or Serializable(s)")
	fs.StringVar(&f.order, "order", "", "Order of results; ASCEND or DESCEND (ASCEND by default)")
	fs.StringVar(&f.sortBy, "sort-by", "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION")
	fs.Int64Var(&f.limit, "limit", 0, "Maximum number of results")
	fs.BoolVar(&f.prefix, "prefix", false, "Get keys with matching prefix")
	fs.BoolVar(&f.fromKey, "from-key", false, "Get keys that are greater than or equal to the given key using byte compare")
	fs.Int64Var(&f.rev, "rev", 0, "Specify the kv revision")
	fs.BoolVar(&f.keysOnly, "keys-only", false, "Get only the keys")
	fs.BoolVar(&f.countOnly, "count-only", false, "Get only the count")
	fs.BoolVar(&f.printValueOnly, "print-value-only", false, `Only write values when using the "simple" output format`)
	fs.Int64Var(&f.minCreateRev, "min-create-rev", 0, "Minimum create revision")
	fs.Int64Var(&f.maxCreateRev, "max-create-rev", 0, "Maximum create revision")
	fs.Int64Var(&f.minModRev, "min-mod-rev", 0, "Minimum modification revision")
	fs.Int64Var(&f.maxModRev, "max-mod-rev", 0, "Maximum modification revision")
}

// sortOrders and sortTargets are the values of --order and --sort-by.
var (
	sortOrders = map[string]clientv3.SortOrder{
		"": clientv3.SortNone, "ASCEND": clientv3.SortAscend, "DESCEND": clientv3.SortDescend,
	}
	sortTargets = map[string]clientv3.SortTarget{
		"": clientv3.SortByKey, "CREATE": clientv3.SortByCreateRevision, "KEY": clientv3.SortByKey,
		"MODIFY": clientv3.SortByModRevision, "VALUE": clientv3.SortByValue, "VERSION": clientv3.SortByVersion,
	}
)

// serializable reads --consistency: "s" is serializable, "l" linearizable.
func serializable(consistency string) (bool, error) {
	switch consistency {
	case "s":
		return true, nil
	case "l":
		return false, nil
	}
	return false, withCode(exitBadFeature, fmt.Errorf("unknown consistency flag %q", consistency))
}

// op builds the range read of args (KEY [RANGE_END]).
func (f *getFlags) op(args []string) (clientv3.Op, error) {
	if len(args) == 0 || len(args) > 2 {
		return clientv3.Op{}, badArgs("get command needs one argument as key and an optional argument as range_end")
	}
	if f.prefix && f.fromKey {
		return clientv3.Op{}, badArgs("`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	if f.keysOnly && f.countOnly {
		return clientv3.Op{}, badArgs("`--keys-only` and `--count-only` cannot be set at the same time, choose one")
	}
	var opts []clientv3.OpOption
	s, err := serializable(f.consistency)
	if err != nil {
		return clientv3.Op{}, err
	}
	if s {
		opts = append(opts, clientv3.WithSerializable())
	}
	key := args[0]
	if len(args) > 1 {
		if f.prefix || f.fromKey {
			return clientv3.Op{}, badArgs("too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	opts = append(opts, clientv3.WithLimit(f.limit))
	if f.rev > 0 {
		opts = append(opts, clientv3.WithRev(f.rev))
	}
	order, ok := sortOrders[strings.ToUpper(f.order)]
	if !ok {
		return clientv3.Op{}, withCode(exitBadFeature, fmt.Errorf("bad sort order %v", f.order))
	}
	target, ok := sortTargets[strings.ToUpper(f.sortBy)]
	if !ok {
		return clientv3.Op{}, withCode(exitBadFeature, fmt.Errorf("bad sort target %v", f.sortBy))
	}
	opts = append(opts, clientv3.WithSort(target, order))
	key, opts = rangeOpts(key, f.prefix, f.fromKey, opts)
	if f.keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if f.countOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if f.minCreateRev > 0 {
		opts = append(opts, clientv3.WithMinCreateRev(f.minCreateRev))
	}
	if f.maxCreateRev > 0 {
		if f.minCreateRev > f.maxCreateRev {
			return clientv3.Op{}, withCode(exitBadFeature, fmt.Errorf("getMinCreateRev(=%v) > getMaxCreateRev(=%v)", f.minCreateRev, f.maxCreateRev))
		}
		opts = append(opts, clientv3.WithMaxCreateRev(f.maxCreateRev))
	}
	if f.minModRev > 0 {
		opts = append(opts, clientv3.WithMinModRev(f.minModRev))
	}
	if f.maxModRev > 0 {
		if f.minModRev > f.maxModRev {
			return clientv3.Op{}, withCode(exitBadFeature, fmt.Errorf("getMinModRev(=%v) > getMaxModRev(=%v)", f.minModRev, f.maxModRev))
		}
		opts = append(opts, clientv3.WithMaxModRev(f.maxModRev))
	}
	return clientv3.OpGet(key, opts...), nil
}

// rangeOpts applies --prefix or --from-key to key. An empty key with either
// means every key, which clientv3 spells as "\x00" with from-key.
func rangeOpts(key string, prefix, fromKey bool, opts []clientv3.OpOption) (string, []clientv3.OpOption) {
	switch {
	case (prefix || fromKey) && key == "":
		return "\x00", append(opts, clientv3.WithFromKey())
	case prefix:
		return key, append(opts, clientv3.WithPrefix())
	case fromKey:
		return key, append(opts, clientv3.WithFromKey())
	}
	return key, opts
}

func newGetCommand(o *globalOptions) *cobra.Command {
	var f getFlags
	cmd := &cobra.Command{
		Use:   "get [options] <key> [range_end]",
		Short: "Gets the key or a range of keys",
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := f.op(args)
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respGet)
			if err != nil {
				return err
			}
			if f.countOnly && o.writeOut != "fields" {
				return badArgs("--count-only is only for `--write-out=fields`")
			}
			if f.printValueOnly {
				sp, ok := p.(*simplePrinter)
				if !ok {
					return badArgs("print-value-only is only for `--write-out=simple`")
				}
				sp.valueOnly = true
			}
			resp, err := o.do(cmd, op)
			if err != nil {
				return err
			}
			return p.Get(resp.Get())
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// delFlags are the flags of `kv del`, also parsed inside txn requests.
type delFlags struct {
	prefix  bool
	prevKV  bool
	fromKey bool
	isRange bool
}

func (f *delFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.prefix, "prefix", false, "delete keys with matching prefix")
	fs.BoolVar(&f.prevKV, "prev-kv", false, "return deleted key-value pairs")
	fs.BoolVar(&f.fromKey, "from-key", false, "delete keys that are greater than or equal to the given key using byte compare")
	fs.BoolVar(&f.isRange, "range", false, "delete range of keys without delay")
}

// op builds the delete of args (KEY [RANGE_END]).
func (f *delFlags) op(args []string) (clientv3.Op, error) {
	if len(args) == 0 || len(args) > 2 {
		return clientv3.Op{}, badArgs("del command needs one argument as key and an optional argument as range_end")
	}
	if f.prefix && f.fromKey {
		return clientv3.Op{}, badArgs("`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	var opts []clientv3.OpOption
	key := args[0]
	if len(args) > 1 {
		if f.prefix || f.fromKey {
			return clientv3.Op{}, badArgs("too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	key, opts = rangeOpts(key, f.prefix, f.fromKey, opts)
	if f.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	return clientv3.OpDelete(key, opts...), nil
}

// rangeDeleteGrace is how long `kv del KEY RANGE_END` waits, after warning,
// for the user to interrupt a range delete not confirmed with --range.
const rangeDeleteGrace = 2 * time.Second

func newDelCommand(o *globalOptions) *cobra.Command {
	var f delFlags
	cmd := &cobra.Command{
		Use:   "del [options] <key> [range_end]",
		Short: "Removes the specified key or range of keys [key, range_end)",
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := f.op(args)
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respDel)
			if err != nil {
				return err
			}
			if len(args) == 2 && !f.isRange {
				fmt.Fprintf(cmd.ErrOrStderr(), "Warning: Keys between %q and %q will be deleted. Please interrupt the command within next 2 seconds to cancel. "+
					"You can provide `--range` flag to avoid the delay.\n", args[0], args[1])
				select {
				case <-time.After(rangeDeleteGrace):
				case <-cmd.Context().Done():
					return errors.New("range delete interrupted: nothing was deleted")
				}
			}
			resp, err := o.do(cmd, op)
			if err != nil {
				return err
			}
			return p.Del(resp.Del())
		},
	}
	f.register(cmd.Flags())
	return cmd
}
