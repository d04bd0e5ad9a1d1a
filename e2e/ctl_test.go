package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Helpers that drive members with the real etcdctl and, for the checks
// shared by every test, with clientv3.

const (
	ctlCommandTimeout = 5 * time.Second  // etcdctl's --command-timeout
	ctlProcessTimeout = 20 * time.Second // the whole etcdctl run
	convergeTimeout   = 20 * time.Second // members reach the same state within this
)

// ctlResult is what one etcdctl run printed and how it exited.
type ctlResult struct {
	args   []string
	stdout string
	stderr string
	code   int // exit code; -1 if it could not run or was killed
}

func (r ctlResult) String() string {
	return fmt.Sprintf("etcdctl %s: exit %d, stdout %q, stderr %q",
		strings.Join(r.args, " "), r.code, r.stdout, strings.TrimSpace(r.stderr))
}

// endpoints is the --endpoints value for ms.
func endpoints(ms []*member) string {
	eps := make([]string, len(ms))
	for i, m := range ms {
		eps[i] = m.clientURL
	}
	return strings.Join(eps, ",")
}

// ctl runs etcdctl against ms with stdin (may be empty) and a command
// timeout, and returns what it printed.
func (c *cluster) ctl(ms []*member, stdin string, args ...string) ctlResult {
	c.t.Helper()
	etcdctl := requireEtcdctl(c.t)
	full := append([]string{
		"--endpoints=" + endpoints(ms),
		"--dial-timeout=2s",
		"--command-timeout=" + ctlCommandTimeout.String(),
	}, args...)
	ctx, cancel := context.WithTimeout(c.t.Context(), ctlProcessTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, etcdctl, full...)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := ctlResult{args: args, code: -1}
	err := cmd.Run()
	r.stdout, r.stderr = stdout.String(), stderr.String()
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		r.stderr += "\n(run: " + err.Error() + ")"
	}
	return r
}

// mustCtl is ctl that fails the test unless etcdctl exits 0; it returns stdout.
func (c *cluster) mustCtl(ms []*member, args ...string) string {
	c.t.Helper()
	r := c.ctl(ms, "", args...)
	if r.code != 0 {
		c.t.Fatalf("%v", r)
	}
	return r.stdout
}

// ctlJSON runs etcdctl with -w json against ms and decodes stdout into v.
func (c *cluster) ctlJSON(ms []*member, v any, args ...string) error {
	c.t.Helper()
	r := c.ctl(ms, "", append(args, "-w", "json")...)
	if r.code != 0 {
		return fmt.Errorf("%v", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		return fmt.Errorf("decode %v: %w", r, err)
	}
	return nil
}

// endpointStatus is one element of `etcdctl endpoint status -w json`.
type endpointStatus struct {
	Endpoint string
	Status   *pb.StatusResponse
}

// statusCtl is `etcdctl endpoint status -w json` against m alone.
func (c *cluster) statusCtl(m *member) (*pb.StatusResponse, error) {
	c.t.Helper()
	var out []endpointStatus
	if err := c.ctlJSON([]*member{m}, &out, "endpoint", "status"); err != nil {
		return nil, err
	}
	if len(out) != 1 || out[0].Status == nil || out[0].Status.Header == nil {
		return nil, fmt.Errorf("endpoint status of %s: want one status with a header, got %+v", m.name, out)
	}
	return out[0].Status, nil
}

// leaderCtl polls `etcdctl endpoint status` on each of ms until one of them
// reports itself leader (leader == header.member_id) and returns it.
func (c *cluster) leaderCtl(ms []*member, timeout time.Duration) (*member, uint64) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []string
	for {
		last = last[:0]
		for _, m := range ms {
			st, err := c.statusCtl(m)
			if err != nil {
				last = append(last, err.Error())
				continue
			}
			if st.Leader != 0 && st.Leader == st.Header.MemberId {
				return m, st.Header.MemberId
			}
			last = append(last, fmt.Sprintf("%s: member %x, leader %x", m.name, st.Header.MemberId, st.Leader))
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no member reports itself leader within %v: %s", timeout, strings.Join(last, "; "))
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// endpointHashKV is one element of `etcdctl endpoint hashkv -w json`.
type endpointHashKV struct {
	Endpoint string
	HashKV   *pb.HashKVResponse
}

// hashKVCtl polls `etcdctl endpoint hashkv --rev=rev -w json` on every
// member in ms until all answer with the same hash (a member that has not
// applied rev yet answers "future revision"); it fails the test on a
// disagreement that lasts convergeTimeout, and returns the hash.
func (c *cluster) hashKVCtl(ms []*member, rev int64) uint32 {
	c.t.Helper()
	deadline := time.Now().Add(convergeTimeout)
	for {
		hashes := map[uint32][]string{}
		var problems []string
		for _, m := range ms {
			var out []endpointHashKV
			err := c.ctlJSON([]*member{m}, &out, "endpoint", "hashkv", fmt.Sprintf("--rev=%d", rev))
			switch {
			case err != nil:
				problems = append(problems, err.Error())
			case len(out) != 1 || out[0].HashKV == nil:
				problems = append(problems, fmt.Sprintf("%s: unexpected hashkv output %+v", m.name, out))
			case out[0].HashKV.HashRevision != rev:
				problems = append(problems, fmt.Sprintf("%s: hash_revision %d, want %d", m.name, out[0].HashKV.HashRevision, rev))
			default:
				hashes[out[0].HashKV.Hash] = append(hashes[out[0].HashKV.Hash], m.name)
			}
		}
		if len(problems) == 0 && len(hashes) == 1 {
			for h := range hashes {
				return h
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members do not agree on HashKV at revision %d within %v: hashes %v, problems %v",
				rev, convergeTimeout, hashes, problems)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// leader polls clientv3 Status on each of ms until one reports itself
// leader, and returns it.
func (c *cluster) leader(ms []*member, timeout time.Duration) *member {
	c.t.Helper()
	cli, err := newClient(ms...)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	deadline := time.Now().Add(timeout)
	for {
		var last []string
		for _, m := range ms {
			ctx, cancel := context.WithTimeout(c.t.Context(), time.Second)
			st, err := cli.Status(ctx, m.clientURL)
			cancel()
			if err != nil {
				last = append(last, fmt.Sprintf("%s: %v", m.name, err))
				continue
			}
			if st.Leader != 0 && st.Leader == st.Header.MemberId {
				return m
			}
			last = append(last, fmt.Sprintf("%s: leader %x", m.name, st.Leader))
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no member reports itself leader within %v: %s", timeout, strings.Join(last, "; "))
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// hashKV polls clientv3 HashKV at rev on every running member until all
// answer the same hash, fails the test if they do not within
// convergeTimeout, and returns the hash.
func (c *cluster) hashKV(rev int64) uint32 {
	c.t.Helper()
	ms := c.running()
	cli, err := newClient(ms...)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	deadline := time.Now().Add(convergeTimeout)
	for {
		hashes := map[uint32][]string{}
		var problems []string
		for _, m := range ms {
			ctx, cancel := context.WithTimeout(c.t.Context(), 2*time.Second)
			resp, err := cli.HashKV(ctx, m.clientURL, rev)
			cancel()
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s: %v", m.name, err))
			case resp.HashRevision != rev:
				problems = append(problems, fmt.Sprintf("%s: hash_revision %d, want %d", m.name, resp.HashRevision, rev))
			default:
				hashes[resp.Hash] = append(hashes[resp.Hash], m.name)
			}
		}
		if len(problems) == 0 && len(hashes) == 1 {
			for h := range hashes {
				return h
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members do not agree on HashKV at revision %d within %v: hashes %v, problems %v",
				rev, convergeTimeout, hashes, problems)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}
