package recipes_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/concordkv/concord/recipes"
	"github.com/concordkv/concord/session/sessiontest"
)

// viewer collects a group watch's views.
type viewer struct {
	ch <-chan recipes.GroupView
}

func (v viewer) next(t *testing.T) recipes.GroupView {
	t.Helper()
	select {
	case gv, ok := <-v.ch:
		if !ok {
			t.Fatal("group watch closed")
		}
		return gv
	case <-time.After(10 * time.Second):
		t.Fatal("no group change within 10s")
		return recipes.GroupView{}
	}
}

func ids(ms []recipes.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// expectView reads the next view and checks its members and changes.
func (v viewer) expect(t *testing.T, members, joined, updated, left []string) recipes.GroupView {
	t.Helper()
	gv := v.next(t)
	if !slices.Equal(ids(gv.Members), members) || !slices.Equal(ids(gv.Joined), joined) ||
		!slices.Equal(ids(gv.Updated), updated) || !slices.Equal(ids(gv.Left), left) {
		t.Fatalf("view at %d: members %v joined %v updated %v left %v; want %v %v %v %v",
			gv.Revision, ids(gv.Members), ids(gv.Joined), ids(gv.Updated), ids(gv.Left), members, joined, updated, left)
	}
	return gv
}

// TestGroupMembership: joins, an update, a leave and a lost session, as
// seen by Members and by a watcher, in order.
func TestGroupMembership(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/group")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name = "recipes/group"
	g := recipes.NewGroup(cli, name)
	w := viewer{g.Watch(t.Context())}
	w.expect(t, nil, nil, nil, nil)

	sa, sb, sc := sessiontest.NewSession(t, cli, 10*time.Second), sessiontest.NewSession(t, cli, 10*time.Second), sessiontest.NewSession(t, cli, 10*time.Second)
	a, err := g.Join(t.Context(), sa, "a", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, []string{"a"}, []string{"a"}, nil, nil)
	b, err := g.Join(t.Context(), sb, "b", "10.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, []string{"a", "b"}, []string{"b"}, nil, nil)
	if _, err := g.Join(t.Context(), sc, "c", "10.0.0.3"); err != nil {
		t.Fatal(err)
	}
	w.expect(t, []string{"a", "b", "c"}, []string{"c"}, nil, nil)
	if _, err := g.Join(t.Context(), sc, "a", "impostor"); !errors.Is(err, recipes.ErrMemberExists) {
		t.Fatalf("Join of an existing ID from another session = %v, want ErrMemberExists", err)
	}
	if _, err := g.Join(t.Context(), sc, "x/y", ""); !errors.Is(err, recipes.ErrInvalid) {
		t.Fatalf("Join with a / in the ID = %v, want ErrInvalid", err)
	}

	if err := b.Update(t.Context(), "10.0.0.22"); err != nil {
		t.Fatal(err)
	}
	if gv := w.expect(t, []string{"a", "b", "c"}, nil, []string{"b"}, nil); gv.Updated[0].Value != "10.0.0.22" {
		t.Fatalf("updated value %q", gv.Updated[0].Value)
	}
	if err := a.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.expect(t, []string{"b", "c"}, nil, nil, []string{"a"})
	if !errors.Is(a.Err(), recipes.ErrNotHeld) {
		t.Errorf("Err after Leave = %v, want ErrNotHeld", a.Err())
	}
	if _, err := cli.Revoke(t.Context(), sc.Lease()); err != nil { // c's process "dies"
		t.Fatal(err)
	}
	w.expect(t, []string{"b"}, nil, nil, []string{"c"})

	ms, err := g.Members(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != "b" || ms[0].Value != "10.0.0.22" || ms[0].Lease != sb.Lease() {
		t.Fatalf("Members = %+v", ms)
	}
	// A late watcher starts from the current membership.
	late := viewer{g.Watch(t.Context())}
	late.expect(t, []string{"b"}, []string{"b"}, nil, nil)
	if err := b.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.expect(t, nil, nil, nil, []string{"b"})
}
