package session_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/concordkv/concord/session"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func ExampleNew() {
	ctx := context.Background()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("TTL:", s.TTL())
	// Keys bound to the lease vanish with the session.
	cli.Put(ctx, "/example/session/alive", "yes", clientv3.WithLease(s.Lease()))

	if err := s.Close(ctx); err != nil { // revokes the lease
		log.Fatal(err)
	}
	<-s.Done()
	fmt.Println("closed:", errors.Is(s.Err(), session.ErrClosed))
	resp, _ := cli.Get(ctx, "/example/session/alive")
	fmt.Println("keys left:", len(resp.Kvs))
	// Output:
	// TTL: 10s
	// closed: true
	// keys left: 0
}

// A Hold reports the moment a key of the session is gone.
func ExampleSession_Hold() {
	ctx := context.Background()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	resp, err := cli.Put(ctx, "/example/session/held", "", clientv3.WithLease(s.Lease()))
	if err != nil {
		log.Fatal(err)
	}
	h := s.Hold("/example/session/held", resp.Header.Revision, resp.Header.Revision)
	defer h.Stop()

	cli.Delete(ctx, "/example/session/held") // someone else deletes it
	<-h.Done()
	fmt.Println(errors.Is(h.Err(), session.ErrKeyDeleted))
	// Output:
	// true
}

// A session resumed after a restart keeps its lease and its keys.
func ExampleWithLease() {
	ctx := context.Background()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	saved := s.Lease() // written to disk by a real process
	s.Orphan()         // the process stops without revoking

	resumed, err := session.New(ctx, cli, session.WithLease(saved))
	if err != nil {
		log.Fatal(err)
	}
	defer resumed.Close(ctx)
	fmt.Println(resumed.Lease() == saved, resumed.TTL())
	// Output:
	// true 10s
}

// IsUnavailable separates "try again" from "wrong request".
func ExampleIsUnavailable() {
	fmt.Println(session.IsUnavailable(rpctypes.ErrNoLeader))
	fmt.Println(session.IsUnavailable(fmt.Errorf("put: %w", status.Error(codes.Unavailable, "connection reset"))))
	fmt.Println(session.IsUnavailable(rpctypes.ErrPermissionDenied))
	// Output:
	// true
	// true
	// false
}
