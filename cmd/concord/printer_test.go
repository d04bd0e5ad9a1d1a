package main

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestOutputSupportTable: the table commands consult before sending a
// request agrees with what each printer can print.
func TestOutputSupportTable(t *testing.T) {
	calls := map[response]func(printer) error{
		respGet:            func(p printer) error { return p.Get(&clientv3.GetResponse{}) },
		respPut:            func(p printer) error { return p.Put(&clientv3.PutResponse{}) },
		respDel:            func(p printer) error { return p.Del(&clientv3.DeleteResponse{}) },
		respTxn:            func(p printer) error { return p.Txn(&clientv3.TxnResponse{}) },
		respWatch:          func(p printer) error { return p.Watch(&clientv3.WatchResponse{}) },
		respGrant:          func(p printer) error { return p.Grant(&clientv3.LeaseGrantResponse{}) },
		respRevoke:         func(p printer) error { return p.Revoke(1, &clientv3.LeaseRevokeResponse{}) },
		respKeepAlive:      func(p printer) error { return p.KeepAlive(&clientv3.LeaseKeepAliveResponse{}) },
		respTimeToLive:     func(p printer) error { return p.TimeToLive(&clientv3.LeaseTimeToLiveResponse{}, true) },
		respLeases:         func(p printer) error { return p.Leases(&clientv3.LeaseLeasesResponse{}) },
		respMemberAdd:      func(p printer) error { return p.MemberAdd(&clientv3.MemberAddResponse{}) },
		respMemberRemove:   func(p printer) error { return p.MemberRemove(1, &clientv3.MemberRemoveResponse{}) },
		respMemberUpdate:   func(p printer) error { return p.MemberUpdate(1, &clientv3.MemberUpdateResponse{}) },
		respMemberPromote:  func(p printer) error { return p.MemberPromote(1, &clientv3.MemberPromoteResponse{}) },
		respMemberList:     func(p printer) error { return p.MemberList(&clientv3.MemberListResponse{}) },
		respEndpointHealth: func(p printer) error { return p.EndpointHealth([]epHealth{{Ep: "e", Error: "x"}}) },
		respEndpointStatus: func(p printer) error {
			return p.EndpointStatus([]epStatus{{Ep: "e", Resp: &clientv3.StatusResponse{}}})
		},
		respEndpointHashKV: func(p printer) error {
			return p.EndpointHashKV([]epHashKV{{Ep: "e", Resp: &clientv3.HashKVResponse{}}})
		},
	}
	if len(calls) != int(numResponses) {
		t.Fatalf("%d responses called, %d declared", len(calls), numResponses)
	}
	for format, f := range outputFormats {
		for _, isHex := range []bool{false, true} {
			for kind := range numResponses {
				var out bytes.Buffer
				err := calls[kind](newPrinter(format, isHex, &out, io.Discard))
				if f.supports(kind) {
					if err != nil {
						t.Errorf("%s printer, response %d: %v", format, kind, err)
					}
					continue
				}
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != exitBadFeature || err.Error() != format+" not supported as output format" || out.Len() != 0 {
					t.Errorf("%s printer, unsupported response %d: error %v, output %q", format, kind, err, out.String())
				}
			}
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 7: "7 B", 10: "10 B", 999: "999 B", 1000: "1.0 kB", 16384: "16 kB", 20480: "20 kB",
		99_950: "100 kB", 1_234_567: "1.2 MB", 2_147_483_648: "2.1 GB", 8_589_934_592: "8.6 GB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestWriteTable compares with tables drawn by etcdctl's tablewriter
// (olekukonko/tablewriter v1.1.4, etcdctl's table configuration).
func TestWriteTable(t *testing.T) {
	for _, tc := range []struct {
		hdr  []string
		rows [][]string
		want string
	}{
		{
			[]string{"endpoint", "ab", "a_b", "e"},
			[][]string{{"127.0.0.1:23791", "abcd", "", ""}, {"x", "y", "z", "日本"}},
			"" +
				"┌─────────────────┬──────┬─────┬──────┐\n" +
				"│    ENDPOINT     │  AB  │ A B │  E   │\n" +
				"├─────────────────┼──────┼─────┼──────┤\n" +
				"│ 127.0.0.1:23791 │ abcd │     │      │\n" +
				"│               x │    y │   z │ 日本 │\n" +
				"└─────────────────┴──────┴─────┴──────┘\n",
		},
		{
			[]string{"endpoint", "health"}, nil,
			"" +
				"┌──────────┬────────┐\n" +
				"│ ENDPOINT │ HEALTH │\n" +
				"└──────────┴────────┘\n",
		},
		{
			[]string{"endpoint", "health"},
			[][]string{{"a\nb", "line1\nlonger line2"}, {"a b  c", " lead"}},
			"" +
				"┌──────────┬──────────────┐\n" +
				"│ ENDPOINT │    HEALTH    │\n" +
				"├──────────┼──────────────┤\n" +
				"│        a │        line1 │\n" +
				"│        b │ longer line2 │\n" +
				"│   a b  c │         lead │\n" +
				"└──────────┴──────────────┘\n",
		},
	} {
		var b strings.Builder
		writeTable(&b, tc.hdr, tc.rows)
		wantOutput(t, "table "+strings.Join(tc.hdr, ","), b.String(), tc.want)
	}
}

func TestHexEscape(t *testing.T) {
	wantOutput(t, "hexEscape", hexEscape([]byte("a/\x00\xff")), `\x61\x2f\x00\xff`)
	wantOutput(t, "hexEscape of nothing", hexEscape(nil), "")
}

func TestSplitArgs(t *testing.T) {
	for in, want := range map[string][]string{
		`put k v`:                      {"put", "k", "v"},
		`  put   k  v  `:               {"put", "k", "v"},
		`put k "two words"`:            {"put", "k", "two words"},
		`put k "tab\there \"quoted\""`: {"put", "k", "tab\there \"quoted\""},
		`put k 'single "as is"'`:       {"put", "k", `single "as is"`},
		`put "k"v w`:                   {"put", "k", "v", "w"},
		`get a --prefix`:               {"get", "a", "--prefix"},
		`put k ""`:                     {"put", "k", ""},
	} {
		got, err := splitArgs(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`put k "open`, `put k 'open`, `put k "bad\q"`} {
		if got, err := splitArgs(in); err == nil {
			t.Errorf("splitArgs(%q) = %q, want an error", in, got)
		}
	}
}
