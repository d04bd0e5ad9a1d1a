package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// response names a kind of response the client commands print; output
// formats differ in which kinds they can print.
type response int

const (
	respGet response = iota
	respPut
	respDel
	respTxn
	respWatch
	respGrant
	respRevoke
	respKeepAlive
	respTimeToLive
	respLeases
	respMemberAdd
	respMemberRemove
	respMemberUpdate
	respMemberPromote
	respMemberList
	respEndpointHealth
	respEndpointStatus
	respEndpointHashKV
	numResponses
)

// outputFormat says which responses a -w format can print.
type outputFormat struct {
	all  bool              // every response
	only map[response]bool // otherwise these
	not  map[response]bool // or every response but these
}

func (f outputFormat) supports(r response) bool {
	switch {
	case f.all:
		return true
	case f.only != nil:
		return f.only[r]
	case f.not != nil:
		return !f.not[r]
	}
	return false
}

// outputFormats are etcdctl's -w formats (but protobuf) with the responses
// each prints: fields cannot print member changes, table only prints the
// member list and the endpoint reports.
var outputFormats = map[string]outputFormat{
	"simple": {all: true},
	"json":   {all: true},
	"fields": {not: map[response]bool{respMemberAdd: true, respMemberRemove: true, respMemberUpdate: true, respMemberPromote: true}},
	"table":  {only: map[response]bool{respMemberList: true, respEndpointHealth: true, respEndpointStatus: true, respEndpointHashKV: true}},
}

// errOutputUnsupported is etcdctl's error for a format that cannot print a response.
func errOutputUnsupported(format string) error {
	return withCode(exitBadFeature, errors.New(format+" not supported as output format"))
}

// printer writes responses in one output format. A method returns an error
// only when its format cannot print that response.
type printer interface {
	Get(*clientv3.GetResponse) error
	Put(*clientv3.PutResponse) error
	Del(*clientv3.DeleteResponse) error
	Txn(*clientv3.TxnResponse) error
	Watch(*clientv3.WatchResponse) error

	Grant(*clientv3.LeaseGrantResponse) error
	Revoke(clientv3.LeaseID, *clientv3.LeaseRevokeResponse) error
	KeepAlive(*clientv3.LeaseKeepAliveResponse) error
	TimeToLive(r *clientv3.LeaseTimeToLiveResponse, keys bool) error
	Leases(*clientv3.LeaseLeasesResponse) error

	MemberAdd(*clientv3.MemberAddResponse) error
	MemberRemove(id uint64, r *clientv3.MemberRemoveResponse) error
	MemberUpdate(id uint64, r *clientv3.MemberUpdateResponse) error
	MemberPromote(id uint64, r *clientv3.MemberPromoteResponse) error
	MemberList(*clientv3.MemberListResponse) error

	EndpointHealth([]epHealth) error
	EndpointStatus([]epStatus) error
	EndpointHashKV([]epHashKV) error
}

// newPrinter returns the printer of format (a key of outputFormats).
func newPrinter(format string, isHex bool, out, errOut io.Writer) printer {
	switch format {
	case "json":
		return &jsonPrinter{out: out, isHex: isHex}
	case "fields":
		return &fieldsPrinter{unsupportedPrinter: unsupportedPrinter{"fields"}, out: out, isHex: isHex}
	case "table":
		return &tablePrinter{unsupportedPrinter: unsupportedPrinter{"table"}, out: out}
	}
	return &simplePrinter{out: out, errOut: errOut, isHex: isHex}
}

// unsupportedPrinter refuses every response; the fields and table printers
// embed it and override what they can print.
type unsupportedPrinter struct{ format string }

var _ printer = unsupportedPrinter{}

func (p unsupportedPrinter) err() error                         { return errOutputUnsupported(p.format) }
func (p unsupportedPrinter) Get(*clientv3.GetResponse) error    { return p.err() }
func (p unsupportedPrinter) Put(*clientv3.PutResponse) error    { return p.err() }
func (p unsupportedPrinter) Del(*clientv3.DeleteResponse) error { return p.err() }
func (p unsupportedPrinter) Txn(*clientv3.TxnResponse) error    { return p.err() }
func (p unsupportedPrinter) Watch(*clientv3.WatchResponse) error {
	return p.err()
}
func (p unsupportedPrinter) Grant(*clientv3.LeaseGrantResponse) error { return p.err() }
func (p unsupportedPrinter) Revoke(clientv3.LeaseID, *clientv3.LeaseRevokeResponse) error {
	return p.err()
}
func (p unsupportedPrinter) KeepAlive(*clientv3.LeaseKeepAliveResponse) error { return p.err() }
func (p unsupportedPrinter) TimeToLive(*clientv3.LeaseTimeToLiveResponse, bool) error {
	return p.err()
}
func (p unsupportedPrinter) Leases(*clientv3.LeaseLeasesResponse) error  { return p.err() }
func (p unsupportedPrinter) MemberAdd(*clientv3.MemberAddResponse) error { return p.err() }
func (p unsupportedPrinter) MemberRemove(uint64, *clientv3.MemberRemoveResponse) error {
	return p.err()
}
func (p unsupportedPrinter) MemberUpdate(uint64, *clientv3.MemberUpdateResponse) error {
	return p.err()
}
func (p unsupportedPrinter) MemberPromote(uint64, *clientv3.MemberPromoteResponse) error {
	return p.err()
}
func (p unsupportedPrinter) MemberList(*clientv3.MemberListResponse) error { return p.err() }
func (p unsupportedPrinter) EndpointHealth([]epHealth) error               { return p.err() }
func (p unsupportedPrinter) EndpointStatus([]epStatus) error               { return p.err() }
func (p unsupportedPrinter) EndpointHashKV([]epHashKV) error               { return p.err() }

// epHealth is one endpoint's health check result; the JSON names are etcdctl's.
type epHealth struct {
	Ep     string `json:"endpoint"`
	Health bool   `json:"health"`
	Took   string `json:"took"`
	Error  string `json:"error,omitempty"`
}

// epStatus is one endpoint's status; the JSON names are etcdctl's.
type epStatus struct {
	Ep   string                   `json:"Endpoint"`
	Resp *clientv3.StatusResponse `json:"Status"`
}

// epHashKV is one endpoint's KV hash; the JSON names are etcdctl's.
type epHashKV struct {
	Ep   string                   `json:"Endpoint"`
	Resp *clientv3.HashKVResponse `json:"HashKV"`
}

// writeKV prints a key line (unless valueOnly) and a value line.
func writeKV(w io.Writer, isHex, valueOnly bool, kv *mvccpb.KeyValue) {
	k, v := string(kv.GetKey()), string(kv.GetValue())
	if isHex {
		k, v = hexEscape(kv.GetKey()), hexEscape(kv.GetValue())
	}
	if !valueOnly {
		fmt.Fprintln(w, k)
	}
	fmt.Fprintln(w, v)
}

// hexEscape writes every byte of b as \xNN, as etcdctl's --hex does.
func hexEscape(b []byte) string {
	var s strings.Builder
	s.Grow(4 * len(b))
	for _, c := range b {
		s.WriteString(`\x`)
		s.WriteString(hex.EncodeToString([]byte{c}))
	}
	return s.String()
}

// humanBytes formats a size in SI units the way etcdctl's table does
// (go-humanize's Bytes): "20 kB", "2.1 GB", "7 B".
func humanBytes(n uint64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	sizes := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	e := math.Floor(math.Log(float64(n)) / math.Log(1000))
	val := math.Floor(float64(n)/math.Pow(1000, e)*10+0.5) / 10
	format := "%.0f %s"
	if val < 10 {
		format = "%.1f %s"
	}
	return fmt.Sprintf(format, val, sizes[int(e)])
}

// The tables below are shared by the simple (comma-joined rows) and the
// table printers; their columns are etcdctl's.

func memberListTable(r *clientv3.MemberListResponse) (hdr []string, rows [][]string) {
	hdr = []string{"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"}
	for _, m := range (*pb.MemberListResponse)(r).GetMembers() {
		status := "started"
		if m.GetName() == "" {
			status = "unstarted"
		}
		rows = append(rows, []string{
			fmt.Sprintf("%x", m.GetID()),
			status,
			m.GetName(),
			strings.Join(m.GetPeerURLs(), ","),
			strings.Join(m.GetClientURLs(), ","),
			strconv.FormatBool(m.GetIsLearner()),
		})
	}
	return hdr, rows
}

func endpointHealthTable(hs []epHealth) (hdr []string, rows [][]string) {
	hdr = []string{"endpoint", "health", "took", "error"}
	for _, h := range hs {
		rows = append(rows, []string{h.Ep, strconv.FormatBool(h.Health), h.Took, h.Error})
	}
	return hdr, rows
}

func endpointStatusTable(sts []epStatus) (hdr []string, rows [][]string) {
	hdr = []string{
		"endpoint", "ID", "version", "storage version", "db size", "in use", "percentage not in use", "quota",
		"is leader", "is learner", "raft term", "raft index", "raft applied index", "errors",
		"downgrade target version", "downgrade enabled",
	}
	for _, st := range sts {
		r := (*pb.StatusResponse)(st.Resp)
		notInUse := 0
		if size := r.GetDbSize(); size > 0 {
			notInUse = int(100 - r.GetDbSizeInUse()*100/size)
		}
		rows = append(rows, []string{
			st.Ep,
			fmt.Sprintf("%x", r.GetHeader().GetMemberId()),
			r.GetVersion(),
			r.GetStorageVersion(),
			humanBytes(uint64(r.GetDbSize())),
			humanBytes(uint64(r.GetDbSizeInUse())),
			fmt.Sprintf("%d%%", notInUse),
			humanBytes(uint64(r.GetDbSizeQuota())),
			strconv.FormatBool(r.GetLeader() == r.GetHeader().GetMemberId()),
			strconv.FormatBool(r.GetIsLearner()),
			strconv.FormatUint(r.GetRaftTerm(), 10),
			strconv.FormatUint(r.GetRaftIndex(), 10),
			strconv.FormatUint(r.GetRaftAppliedIndex(), 10),
			strings.Join(r.GetErrors(), ", "),
			r.GetDowngradeInfo().GetTargetVersion(),
			strconv.FormatBool(r.GetDowngradeInfo().GetEnabled()),
		})
	}
	return hdr, rows
}

func endpointHashKVTable(hs []epHashKV) (hdr []string, rows [][]string) {
	hdr = []string{"endpoint", "hash", "hash_revision"}
	for _, h := range hs {
		r := (*pb.HashKVResponse)(h.Resp)
		rows = append(rows, []string{
			h.Ep,
			strconv.FormatUint(uint64(r.GetHash()), 10),
			strconv.FormatInt(r.GetHashRevision(), 10),
		})
	}
	return hdr, rows
}
