package agent

import (
	"context"
	"fmt"
	"net/http"

	gw "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	etcdgw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	electiongw "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb/gw"
	lockgw "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb/gw"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// newGateway returns etcd's HTTP/JSON gateway (POST /v3/kv/range and
// friends, /v3/lock/lock, /v3/election/campaign, ...; keys and values
// base64) as a client of this member's own gRPC API over conn, marshalling
// exactly as etcd's gateway does.
func newGateway(ctx context.Context, conn *grpc.ClientConn) (http.Handler, error) {
	mux := gw.NewServeMux(gw.WithMarshalerOption(gw.MIMEWildcard, &gw.HTTPBodyMarshaler{
		Marshaler: &gw.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}))
	for _, register := range []func(context.Context, *gw.ServeMux, *grpc.ClientConn) error{
		etcdgw.RegisterKVHandler,
		etcdgw.RegisterWatchHandler,
		etcdgw.RegisterLeaseHandler,
		etcdgw.RegisterClusterHandler,
		etcdgw.RegisterMaintenanceHandler,
		lockgw.RegisterLockHandler,         // /v3/lock/lock, /v3/lock/unlock
		electiongw.RegisterElectionHandler, // /v3/election/campaign, ...
	} {
		if err := register(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("register gateway handler: %w", err)
		}
	}
	return mux, nil
}

// dialSelf opens the gateway's connection to this member's gRPC API.
func dialSelf(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial own client port %s for the gateway: %w", addr, err)
	}
	return conn, nil
}
