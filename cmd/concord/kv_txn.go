package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newTxnCommand(o *globalOptions) *cobra.Command {
	var interactive bool
	cmd := &cobra.Command{
		Use:   "txn [options]",
		Short: "Txn processes all the requests in one transaction",
		Long: `Txn reads a transaction from standard input and applies it atomically.

The input has three blank-line separated sections, as etcdctl's txn reads:
1) compares, one per line:  value("key") = "v", mod("key") > "5",
   create("key") = "0", version("key") != "2", lease("key") = "694d..." (hex);
   operators =, !=, <, >
2) requests to run if every compare holds: put KEY VALUE, get KEY, del KEY,
   with the flags of kv put/get/del (e.g. "get a --prefix")
3) requests to run otherwise

Example:
  printf 'mod("key1") > "0"\n\nput key1 "overwrote-key1"\n\nput key1 "created-key1"\n\n' | concord kv txn`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return badArgs("txn command does not accept argument")
			}
			cmps, thens, elses, err := readTxn(cmd.InOrStdin(), cmd.OutOrStdout(), interactive)
			if err != nil {
				return err
			}
			p, err := o.printerFor(cmd, respTxn)
			if err != nil {
				return err
			}
			cli, err := o.client(cmd)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := o.commandCtx(cmd)
			defer cancel()
			resp, err := cli.Txn(ctx).If(cmps...).Then(thens...).Else(elses...).Commit()
			if err != nil {
				return err
			}
			return p.Txn(resp)
		},
	}
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Input transaction in interactive mode")
	return cmd
}

// readTxn reads the three sections of a transaction from in, prompting for
// each on prompt when interactive. The end of input also ends a section.
func readTxn(in io.Reader, prompt io.Writer, interactive bool) (cmps []clientv3.Cmp, thens, elses []clientv3.Op, err error) {
	r := bufio.NewReader(in)
	ask := func(s string) {
		if interactive {
			fmt.Fprintln(prompt, s)
		}
	}
	ask("compares:")
	lines, err := readSection(r)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, l := range lines {
		c, err := parseCompare(l)
		if err != nil {
			return nil, nil, nil, withCode(exitInvalidInput, err)
		}
		cmps = append(cmps, c)
	}
	ask("success requests (get, put, del):")
	if thens, err = readOps(r); err != nil {
		return nil, nil, nil, err
	}
	ask("failure requests (get, put, del):")
	if elses, err = readOps(r); err != nil {
		return nil, nil, nil, err
	}
	return cmps, thens, elses, nil
}

// readSection returns the trimmed lines up to the next blank line or the
// end of input.
func readSection(r *bufio.Reader) ([]string, error) {
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, withCode(exitInvalidInput, fmt.Errorf("read txn: %w", err))
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return lines, nil
		}
		lines = append(lines, line)
		if err != nil { // io.EOF after a last line without newline
			return lines, nil
		}
	}
}

func readOps(r *bufio.Reader) ([]clientv3.Op, error) {
	lines, err := readSection(r)
	if err != nil {
		return nil, err
	}
	ops := make([]clientv3.Op, 0, len(lines))
	for _, l := range lines {
		op, err := parseTxnOp(l)
		if err != nil {
			return nil, withCode(exitInvalidInput, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// parseTxnOp parses one request line: put, get or del with the arguments
// and flags of the kv command of that name.
func parseTxnOp(line string) (clientv3.Op, error) {
	args, err := splitArgs(line)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("invalid txn request: %s (%w)", line, err)
	}
	if len(args) < 2 {
		return clientv3.Op{}, fmt.Errorf("invalid txn request: %s", line)
	}
	fs := pflag.NewFlagSet(args[0], pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var build func([]string) (clientv3.Op, error)
	switch args[0] {
	case "put":
		var f putFlags
		f.register(fs)
		build = func(a []string) (clientv3.Op, error) { return f.op(a, strings.NewReader("")) }
	case "get":
		var f getFlags
		f.register(fs)
		build = f.op
	case "del", "delete":
		var f delFlags
		f.register(fs)
		build = f.op
	default:
		return clientv3.Op{}, fmt.Errorf("invalid txn request: %s (unknown request %q; want get, put or del)", line, args[0])
	}
	if err := fs.Parse(args[1:]); err != nil {
		return clientv3.Op{}, fmt.Errorf("invalid txn request: %s (%w)", line, err)
	}
	op, err := build(fs.Args())
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("invalid txn request: %s (%w)", line, err)
	}
	return op, nil
}

// parseCompare parses one compare line, `target("key") op "value"`, with
// etcdctl's targets and their short names.
func parseCompare(line string) (clientv3.Cmp, error) {
	target, rest, ok := strings.Cut(line, "(")
	if !ok {
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s", line)
	}
	target = strings.TrimSpace(target)
	var key, op, val string
	if n, err := fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val); n != 3 {
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s (want target(\"key\") op \"value\": %v)", line, err)
	}
	switch op {
	case "=", "!=", "<", ">":
	default:
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s (unknown operator %s; want =, !=, < or >)", line, op)
	}
	number := func() (int64, error) {
		v, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid txn compare request: %s (%q is not a number)", line, val)
		}
		return v, nil
	}
	var cmp clientv3.Cmp
	switch target {
	case "ver", "version":
		cmp = clientv3.Version(key)
	case "c", "create":
		cmp = clientv3.CreateRevision(key)
	case "m", "mod":
		cmp = clientv3.ModRevision(key)
	case "val", "value":
		return clientv3.Compare(clientv3.Value(key), op, val), nil
	case "lease":
		id, err := parseLeaseID(val)
		if err != nil {
			return clientv3.Cmp{}, fmt.Errorf("invalid txn compare request: %s (bad lease ID %q, expecting ID in Hex)", line, val)
		}
		return clientv3.Compare(clientv3.LeaseValue(key), op, id), nil
	default:
		return clientv3.Cmp{}, fmt.Errorf("malformed comparison: %s (unknown target %s)", line, target)
	}
	v, err := number()
	if err != nil {
		return clientv3.Cmp{}, err
	}
	return clientv3.Compare(cmp, op, v), nil
}

// splitArgs splits a request line into words as etcdctl does: spaces
// separate words; "double quotes" take Go escapes; 'single quotes' are
// literal.
func splitArgs(s string) ([]string, error) {
	var args []string
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return args, nil
		}
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			word, err := strconv.Unquote(s[:end+1])
			if err != nil {
				return nil, fmt.Errorf("bad quoted string %s: %w", s[:end+1], err)
			}
			args = append(args, word)
			s = s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			args = append(args, s[1:end+1])
			s = s[end+2:]
		default:
			end := strings.IndexAny(s, " \t\r\n")
			if end < 0 {
				end = len(s)
			}
			args = append(args, s[:end])
			s = s[end:]
		}
	}
}
