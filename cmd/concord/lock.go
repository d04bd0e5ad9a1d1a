package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
)

// defaultLockTTL is `lock --ttl`'s default, etcdctl lock's: a holder
// that dies without releasing blocks the others this long.
const defaultLockTTL = 10 * time.Second

// childStopDelay is how long a command sent SIGTERM (its lock was lost,
// or concord was interrupted) has to exit before it is killed.
const childStopDelay = 10 * time.Second

// errLockLost ends a command's context when its lock is lost.
var errLockLost = errors.New("lock lost")

// newLockCommand returns `concord lock NAME [-- COMMAND ARGS...]` and its
// subcommand `lock list NAME`.
func newLockCommand(o *globalOptions) *cobra.Command {
	ttl := defaultLockTTL
	cmd := &cobra.Command{
		Use:   "lock <name> [-- command args...]",
		Short: "Holds a named lock while a command runs, or until interrupted",
		Long: `Waits for the lock NAME (etcdctl lock's and etcd's concurrency.Mutex's
layout: keys under NAME/, served oldest first), then prints its key and its
fencing token (the key's create revision: strictly increasing from one
holder to the next).

With "-- COMMAND ARGS...", runs COMMAND while holding the lock, with the
token in CONCORD_FENCING_TOKEN and the key in CONCORD_LOCK_KEY (and
ETCD_LOCK_KEY), prints the key and token on stderr instead of stdout, exits
with COMMAND's exit code, and releases the lock. If the lock is lost while
COMMAND runs (session expired, key deleted), COMMAND is sent SIGTERM (and
killed 10s later), the loss is reported and the exit code is 1.

Without a command, holds the lock until interrupted (SIGINT, SIGTERM), then
releases it; a lost lock is reported with exit code 1.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, argv, err := lockArgs(cmd, args)
			if err != nil {
				return err
			}
			if o.writeOut != "simple" && o.writeOut != "json" {
				return errOutputUnsupported(o.writeOut)
			}
			return runLock(cmd, o, name, argv, ttl)
		},
	}
	cmd.Flags().Var(ttlValue{&ttl}, "ttl", "session TTL: how long the lock outlives this process if it dies (seconds, or a duration such as 30s)")
	cmd.AddCommand(newLockListCommand(o))
	return o.attach(cmd)
}

// lockArgs splits `lock NAME [--] [COMMAND ARGS...]`.
func lockArgs(cmd *cobra.Command, args []string) (name string, argv []string, err error) {
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		if dash != 1 {
			return "", nil, badArgs("lock takes one lock name before --")
		}
		if len(args) == 1 {
			return "", nil, badArgs("bad number of arguments (found separator --, but no commands)")
		}
	}
	if len(args) == 0 {
		return "", nil, badArgs("lock takes a lock name argument and an optional command to execute")
	}
	if args[0] == "" {
		return "", nil, badArgs("empty lock name")
	}
	return args[0], args[1:], nil
}

// runLock acquires the lock, holds it while argv runs (or until
// interrupted) and releases it.
func runLock(cmd *cobra.Command, o *globalOptions, name string, argv []string, ttl time.Duration) error {
	cli, err := o.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := o.commandCtx(cmd)
	s, err := session.New(ctx, cli, session.WithTTL(ttl))
	cancel()
	if err != nil {
		return fmt.Errorf("lock %s: start session: %w", name, err)
	}
	// Revoking the lease on the way out releases the lock even if the
	// Unlock below failed, and ends a waiter's key at once.
	defer func() {
		ctx, cancel := o.commandCtx(cmd)
		defer cancel()
		s.Close(context.WithoutCancel(ctx))
	}()

	m := lock.NewMutex(s, name, lock.WithLeaseKey(), lock.WithValue(holderValue()))
	token, err := m.Lock(cmd.Context())
	if err != nil {
		if cmd.Context().Err() != nil {
			return fmt.Errorf("lock %s: interrupted while waiting", name)
		}
		return fmt.Errorf("lock %s: %w", name, err)
	}
	out := cmd.OutOrStdout()
	if len(argv) > 0 {
		out = cmd.ErrOrStderr() // COMMAND's stdout is its own
	}
	if err := printLockHeld(out, o.writeOut, name, m.Key(), token, s.Lease()); err != nil {
		return err
	}

	var held error
	if len(argv) == 0 {
		select {
		case <-cmd.Context().Done():
		case <-m.Done():
			held = fmt.Errorf("lock %s lost: %w", name, m.Err())
		}
	} else {
		held = runHolding(cmd, m, name, argv, token)
	}
	return errors.Join(held, unlock(cmd, o, m, name, errors.Is(held, lock.ErrLost)))
}

// unlock releases the hold; a hold found lost is reported unless the
// loss was reported already.
func unlock(cmd *cobra.Command, o *globalOptions, m *lock.Mutex, name string, reported bool) error {
	ctx, cancel := o.commandCtx(cmd)
	defer cancel()
	err := m.Unlock(context.WithoutCancel(ctx))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lock.ErrLost):
		if reported {
			return nil
		}
		return fmt.Errorf("lock %s lost before it was released: %w", name, err)
	}
	// The session's revoke, on the way out, releases it anyway.
	return nil
}

// runHolding runs argv while m holds the lock. The command gets SIGTERM
// when the lock is lost or concord is interrupted; its exit code becomes
// concord's, unless the lock was lost (exit 1, the loss reported).
func runHolding(cmd *cobra.Command, m *lock.Mutex, name string, argv []string, token lock.Token) error {
	ctx, cancel := context.WithCancelCause(cmd.Context())
	var watchers sync.WaitGroup
	watchers.Go(func() {
		select {
		case <-m.Done():
			cancel(errLockLost)
		case <-ctx.Done():
		}
	})
	defer watchers.Wait()
	defer cancel(nil)

	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Env = append(os.Environ(),
		"CONCORD_LOCK_KEY="+m.Key(),
		"CONCORD_FENCING_TOKEN="+strconv.FormatInt(int64(token), 10),
		"ETCD_LOCK_KEY="+m.Key(),
	)
	c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = childStopDelay
	runErr := c.Run()

	if errors.Is(m.Err(), lock.ErrLost) {
		signalled := ""
		if errors.Is(context.Cause(ctx), errLockLost) {
			signalled = " (it was sent SIGTERM)"
		}
		return fmt.Errorf("lock %s lost while %s ran%s: %w", name, argv[0], signalled, m.Err())
	}
	if c.ProcessState == nil {
		return fmt.Errorf("run %s: %w", argv[0], runErr)
	}
	if code := exitStatus(c.ProcessState); code != 0 {
		return withCode(code, fmt.Errorf("%s: %s", argv[0], c.ProcessState))
	}
	return nil
}

// exitStatus is a finished process's exit code as a shell reports it:
// 128+N for a process ended by signal N.
func exitStatus(ps *os.ProcessState) int {
	if code := ps.ExitCode(); code >= 0 {
		return code
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return exitGeneral
}

// printLockHeld prints the held lock: its key and token on two lines, or
// one JSON object.
func printLockHeld(w io.Writer, format, name, key string, token lock.Token, lease clientv3.LeaseID) error {
	if format == "json" {
		b, err := json.Marshal(struct {
			Name  string `json:"name"`
			Key   string `json:"key"`
			Token int64  `json:"token"`
			Lease int64  `json:"lease"`
		}{name, key, int64(token), int64(lease)})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(w, "%s\n%d\n", key, token)
	return err
}

// holderValue is stored in a lock key, so that `lock list` says who holds
// or waits: host and process.
func holderValue() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// ttlValue is a --ttl flag: whole seconds as etcdctl takes them ("10"),
// or a Go duration ("1m").
type ttlValue struct{ d *time.Duration }

func (v ttlValue) String() string { return v.d.String() }
func (v ttlValue) Type() string   { return "duration" }

func (v ttlValue) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		*v.d = time.Duration(n) * time.Second
	} else if d, err := time.ParseDuration(s); err == nil {
		*v.d = d
	} else {
		return fmt.Errorf("%q is neither seconds nor a duration", s)
	}
	if *v.d < time.Second {
		return fmt.Errorf("TTL %v is below one second", *v.d)
	}
	return nil
}
