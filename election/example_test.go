package election_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/concordkv/concord/election"
	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// connect returns a client and a session on it, as the examples need.
func connect(ctx context.Context) (*clientv3.Client, *session.Session) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	return cli, s
}

func ExampleNew() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	e := election.New(s, "/example/election/scheduler")
	l, err := e.Campaign(ctx, "host-a:8080")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leading as", l.Value())
	li, err := e.Leader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader:", li.Value, "same token:", li.Token == l.Token())
	l.Resign(ctx)
	// Output:
	// leading as host-a:8080
	// leader: host-a:8080 same token: true
}

// A leader fences its writes on still leading, and watches Done to stop
// working the moment it is deposed.
func ExampleLeadership_IsLeader() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()

	l, err := election.New(s, "/example/election/writer").Campaign(ctx, "me")
	if err != nil {
		log.Fatal(err)
	}
	write := func() bool {
		resp, err := cli.Txn(ctx).If(l.IsLeader()).Then(clientv3.OpPut("/example/data/writer", "x")).Commit()
		return err == nil && resp.Succeeded
	}
	fmt.Println("write as leader:", write())
	s.Close(ctx) // a crash would end the session the same way, after the TTL
	<-l.Done()
	fmt.Println("write after losing:", write())
	fmt.Println("not leader:", errors.Is(l.Err(), election.ErrNotLeader))
	// Output:
	// write as leader: true
	// write after losing: false
	// not leader: true
}

func ExampleLeadership_Proclaim() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	l, err := election.New(s, "/example/election/proclaim").Campaign(ctx, "v1")
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Proclaim(ctx, "v2"); err != nil {
		log.Fatal(err)
	}
	li, _ := election.Leader(ctx, cli, "/example/election/proclaim")
	fmt.Println(li.Value)
	l.Resign(ctx)
	// Output:
	// v2
}

// Observers need no session; they see every leader and every value, in
// order.
func ExampleObserve() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	const name = "/example/election/observed"
	changes := election.Observe(ctx, cli, name)
	fmt.Println("leader at first:", (<-changes).HasLeader())

	e := election.New(s, name)
	l, _ := e.Campaign(ctx, "one")
	l.Proclaim(ctx, "two")
	l.Resign(ctx)
	for range 3 {
		li := <-changes
		if li.HasLeader() {
			fmt.Println("leader:", li.Value)
		} else {
			fmt.Println("no leader")
		}
	}
	// Output:
	// leader at first: false
	// leader: one
	// leader: two
	// no leader
}

func ExampleLeader() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	_, err := election.Leader(ctx, cli, "/example/election/nobody")
	fmt.Println(errors.Is(err, election.ErrNoLeader))
	// Output:
	// true
}

// A leader restarted with its saved lease keeps its leadership: no
// election, same token.
func ExampleElection_Resume() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()

	l, err := election.New(s, "/example/election/resume").Campaign(ctx, "leader")
	if err != nil {
		log.Fatal(err)
	}
	saved := s.Lease() // a real process would write it to disk
	s.Orphan()         // and die here

	s2, err := session.New(ctx, cli, session.WithLease(saved))
	if err != nil {
		log.Fatal(err)
	}
	defer s2.Close(ctx)
	l2, err := election.New(s2, "/example/election/resume").Resume(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l2.Value(), l2.Token() == l.Token())
	l2.Resign(ctx)
	// Output:
	// leader true
}
