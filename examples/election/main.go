// Command election shows package election at work: it campaigns to lead
// an election, says when it is elected, and prints every leader change it
// observes. Run several copies; stop the leader with Ctrl-C (it resigns,
// the next takes over at once) or kill -9 it (the next takes over when its
// session TTL runs out). See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/concordkv/concord/election"
	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "election:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("election", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	name := fs.String("name", "/examples/election", "election name: its keys live under NAME/")
	host, _ := os.Hostname()
	value := fs.String("value", fmt.Sprintf("%s pid %d", host, os.Getpid()), "value to lead with")
	ttl := fs.Duration("ttl", 5*time.Second, "session TTL: how long a crashed leader stays leader")
	observeOnly := fs.Bool("observe", false, "only print leader changes, do not campaign")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cli.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	obsCtx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	wg.Go(func() {
		for li := range election.Observe(obsCtx, cli, *name) {
			if li.HasLeader() {
				fmt.Fprintf(out, "leader: %q (token %d, revision %d)\n", li.Value, li.Token, li.Revision)
			} else {
				fmt.Fprintf(out, "no leader (revision %d)\n", li.Revision)
			}
		}
	})
	if *observeOnly {
		<-ctx.Done()
		return nil
	}

	s, err := session.New(ctx, cli, session.WithTTL(*ttl))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer s.Close(context.Background())
	fmt.Fprintf(out, "campaigning as %q\n", *value)
	l, err := election.New(s, *name).Campaign(ctx, *value)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while waiting
		}
		return fmt.Errorf("campaign: %w", err)
	}
	fmt.Fprintf(out, "elected with token %d\n", l.Token())
	select {
	case <-ctx.Done():
		if err := l.Resign(context.Background()); err != nil {
			return fmt.Errorf("resign: %w", err)
		}
		fmt.Fprintln(out, "resigned")
		return nil
	case <-l.Done():
		return fmt.Errorf("lost the leadership: %w", l.Err())
	}
}
