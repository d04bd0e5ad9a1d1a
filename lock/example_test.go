package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// connect returns a client and a session on it, as every example needs.
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

func ExampleNewMutex() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	m := lock.NewMutex(s, "/example/locks/report", lock.WithValue("host-a"))
	token, err := m.Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("locked with a token:", token > 0)
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("unlocked:", errors.Is(m.Err(), lock.ErrNotHeld))
	// Output:
	// locked with a token: true
	// unlocked: true
}

// A write fenced on the hold is refused once the hold is lost, here by
// revoking the session's lease as a crash would.
func ExampleMutex_IsOwner() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()

	m := lock.NewMutex(s, "/example/locks/fenced")
	if _, err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	put := clientv3.OpPut("/example/data/fenced", "written under the lock")
	resp, err := cli.Txn(ctx).If(m.IsOwner()).Then(put).Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("write while holding:", resp.Succeeded)

	s.Close(ctx) // revokes the lease: the lock key is deleted
	<-m.Done()
	resp, err = cli.Txn(ctx).If(m.IsOwner()).Then(put).Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("write after the loss:", resp.Succeeded)
	fmt.Println("lost:", errors.Is(m.Err(), lock.ErrLost))
	// Output:
	// write while holding: true
	// write after the loss: false
	// lost: true
}

func ExampleMutex_TryLock() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	holder := lock.NewMutex(s, "/example/locks/try")
	if _, err := holder.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	_, err := lock.NewMutex(s, "/example/locks/try").TryLock(ctx)
	fmt.Println("second participant:", errors.Is(err, lock.ErrLocked))
	holder.Unlock(ctx)
	// Output:
	// second participant: true
}

// Lock waits for the holder; a deadline bounds the wait.
func ExampleMutex_Lock() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	holder := lock.NewMutex(s, "/example/locks/wait")
	first, _ := holder.Lock(ctx)
	go func() {
		time.Sleep(100 * time.Millisecond)
		holder.Unlock(ctx)
	}()

	waiter := lock.NewMutex(s, "/example/locks/wait")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	second, err := waiter.Lock(wctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("next holder's token is larger:", second > first)
	waiter.Unlock(ctx)
	// Output:
	// next holder's token is larger: true
}

// A holder that restarts with its saved lease resumes its hold, with the
// same token, without letting anyone in between.
func ExampleMutex_Resume() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()

	m := lock.NewMutex(s, "/example/locks/resume", lock.WithLeaseKey())
	token, err := m.Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	saved := s.Lease() // a real process would write it to disk
	s.Orphan()         // the process "dies"; the lease lives for its TTL

	s2, err := session.New(ctx, cli, session.WithLease(saved))
	if err != nil {
		log.Fatal(err)
	}
	defer s2.Close(ctx)
	m2 := lock.NewMutex(s2, "/example/locks/resume", lock.WithLeaseKey())
	resumed, err := m2.Resume(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same token:", resumed == token)
	m2.Unlock(ctx)
	// Output:
	// same token: true
}

func ExampleNewRWMutex() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	r1 := lock.NewRWMutex(s, "/example/locks/config")
	r2 := lock.NewRWMutex(s, "/example/locks/config")
	w := lock.NewRWMutex(s, "/example/locks/config")
	r1.RLock(ctx)
	_, err := r2.TryRLock(ctx)
	fmt.Println("two readers:", err == nil)
	_, err = w.TryLock(ctx)
	fmt.Println("writer while readers hold:", errors.Is(err, lock.ErrLocked))
	r1.RUnlock(ctx)
	r2.RUnlock(ctx)
	_, err = w.Lock(ctx)
	fmt.Println("writer after the readers left:", err == nil)
	w.Unlock(ctx)
	// Output:
	// two readers: true
	// writer while readers hold: true
	// writer after the readers left: true
}
