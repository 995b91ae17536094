package fjordtest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Classic group protocol edge cases as Kafka's coordinator answers them,
// driven through franz-go (raw kmsg requests where a client would hide them).

// Admin (generation -1) commits are for empty groups only: with an active
// member Kafka answers UNKNOWN_MEMBER_ID; a stale generation is
// ILLEGAL_GENERATION; an unknown member UNKNOWN_MEMBER_ID.
func TestGroupCommitValidation(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	produceTo(t, topic, 0, 5, nil)
	group := uniq("commitval")
	m := startMember(t, "m", group, topic, kgo.RangeBalancer())
	waitFor(t, 30*time.Second, "member assigned", func() bool { return len(m.owned()) == 1 })
	memberID, gen := m.cl.GroupMetadata()
	raw := newClient(t)
	commit := func(member string, generation int32) error {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = group
		req.MemberID = member
		req.Generation = generation
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = 0
		rp.Offset = 2
		rp.LeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), raw)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	if err := commit("", -1); !errors.Is(err, kerr.UnknownMemberID) {
		t.Errorf("admin commit to a group with a member: %v, want UNKNOWN_MEMBER_ID", err)
	}
	if err := commit(memberID, gen+5); !errors.Is(err, kerr.IllegalGeneration) {
		t.Errorf("commit with generation %d (current %d): %v, want ILLEGAL_GENERATION", gen+5, gen, err)
	}
	if err := commit("no-such-member", gen); !errors.Is(err, kerr.UnknownMemberID) {
		t.Errorf("commit by an unknown member: %v, want UNKNOWN_MEMBER_ID", err)
	}
	if err := commit(memberID, gen); err != nil {
		t.Errorf("commit by the member at its generation: %v", err)
	}
	// kadm's CommitOffsets is an admin commit too
	var os kadm.Offsets
	os.AddOffset(topic, 0, 1, -1)
	r, err := adm.CommitOffsets(ctxT(t, 10*time.Second), group, os)
	if err == nil {
		err = r.Error()
	}
	if !errors.Is(err, kerr.UnknownMemberID) {
		t.Errorf("kadm CommitOffsets to an active group: %v, want UNKNOWN_MEMBER_ID", err)
	}
	// and the group can't be deleted while it has members
	dr, err := adm.DeleteGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dr[group].Err, kerr.NonEmptyGroup) {
		t.Errorf("DeleteGroups of an active group: %v, want NON_EMPTY_GROUP", dr[group].Err)
	}
}

// Members without a common assignor can't form a group:
// INCONSISTENT_GROUP_PROTOCOL for the newcomer, the first member keeps going.
func TestGroupInconsistentProtocol(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 2, nil)
	group := uniq("inconsistent")
	a := startMember(t, "a", group, topic, kgo.RangeBalancer())
	waitFor(t, 30*time.Second, "a assigned", func() bool { return len(a.owned()) == 2 })

	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = group
	req.SessionTimeoutMillis = 10000
	req.RebalanceTimeoutMillis = 10000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "roundrobin"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{topic}
	p.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	req.MemberID = "" // v4+: the broker answers MEMBER_ID_REQUIRED first
	raw := newClient(t)
	resp, err := req.RequestWith(ctxT(t, 15*time.Second), raw)
	if err != nil {
		t.Fatal(err)
	}
	if e := kerr.ErrorForCode(resp.ErrorCode); errors.Is(e, kerr.MemberIDRequired) {
		req.MemberID = resp.MemberID
		resp, err = req.RequestWith(ctxT(t, 15*time.Second), raw)
		if err != nil {
			t.Fatal(err)
		}
	}
	if e := kerr.ErrorForCode(resp.ErrorCode); !errors.Is(e, kerr.InconsistentGroupProtocol) {
		t.Fatalf("JoinGroup with only roundrobin into a range group: %v, want INCONSISTENT_GROUP_PROTOCOL", e)
	}
	// a different protocol type is refused the same way
	req.ProtocolType = "connect"
	resp, err = req.RequestWith(ctxT(t, 15*time.Second), raw)
	if err != nil {
		t.Fatal(err)
	}
	if e := kerr.ErrorForCode(resp.ErrorCode); !errors.Is(e, kerr.InconsistentGroupProtocol) {
		t.Errorf("JoinGroup with protocol type connect into a consumer group: %v, want INCONSISTENT_GROUP_PROTOCOL", e)
	}
	dg, err := adm.DescribeGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if d := dg[group]; d.State != "Stable" || len(d.Members) != 1 {
		t.Errorf("after the refused joins: state %s, %d members", d.State, len(d.Members))
	}
}

// A member that stops heartbeating (a static member closed without leaving)
// is removed when its session times out, and its partitions go to the others.
func TestGroupSessionTimeout(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 4, nil)
	group := uniq("session")
	a := startMember(t, "a", group, topic, kgo.CooperativeStickyBalancer())
	waitFor(t, 30*time.Second, "a assigned", func() bool { return len(a.owned()) == 4 })

	// b: static, 6 s session (the broker minimum), never leaves
	assigned := make(chan struct{}, 8)
	b, err := kgo.NewClient(append(baseOpts(t, shared), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.InstanceID("static-b"), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m[topic]) > 0 {
				assigned <- struct{}{}
			}
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if fs := b.PollFetches(context.Background()); fs.IsClientClosed() {
				return
			}
		}
	}()
	select {
	case <-assigned:
	case <-time.After(30 * time.Second):
		b.Close()
		t.Fatal("b never got partitions")
	}
	waitFor(t, 30*time.Second, "a gave up partitions to b", func() bool { return len(a.owned()) == 2 })
	closed := time.Now()
	b.Close() // static: no LeaveGroup
	waitFor(t, 30*time.Second, "a owns everything after b's session expired", func() bool { return len(a.owned()) == 4 })
	took := time.Since(closed)
	if took < 4*time.Second {
		t.Errorf("b's partitions moved after %v, before its 6 s session could expire (did it leave?)", took)
	}
	dg, err := adm.DescribeGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if ms := dg[group].Members; len(ms) != 1 {
		t.Errorf("members after expiry: %d, want 1", len(ms))
	}
}

// A regex subscription picks up a topic created later: the member rejoins
// with new metadata and the coordinator rebalances.
func TestGroupRegexSubscriptionNewTopic(t *testing.T) {
	adm := setup(t)
	prefix := uniq("rx")
	t1 := prefix + "-one"
	if _, err := adm.CreateTopic(ctxT(t, 10*time.Second), 1, 1, nil, t1); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, kgo.ConsumerGroup(uniq("rxg")), kgo.ConsumeRegex(), kgo.ConsumeTopics("^"+regexp.QuoteMeta(prefix)+"-.*"),
		kgo.MetadataMaxAge(500*time.Millisecond), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.HeartbeatInterval(300*time.Millisecond))
	produceTo(t, t1, 0, 3, nil)
	got := pollN(t, cl, 3, 30*time.Second)
	if got[0].Topic != t1 {
		t.Fatalf("got %s", got[0].Topic)
	}
	t2 := prefix + "-two"
	if _, err := adm.CreateTopic(ctxT(t, 10*time.Second), 2, 1, nil, t2); err != nil {
		t.Fatal(err)
	}
	produceTo(t, t2, 1, 4, nil)
	got = pollN(t, cl, 4, 30*time.Second)
	for _, r := range got {
		if r.Topic != t2 || r.Partition != 1 {
			t.Fatalf("after the new topic: record from %s/%d", r.Topic, r.Partition)
		}
	}
}

// Producing to a missing topic: franz-go does not ask for auto-creation by
// default (UNKNOWN_TOPIC_OR_PARTITION), AllowAutoTopicCreation creates it with
// the broker's default partition count.
func TestKgoAutoTopicCreation(t *testing.T) {
	adm := setup(t)
	missing := uniq("noauto")
	cl := newClient(t, kgo.UnknownTopicRetries(2), kgo.RecordDeliveryTimeout(10*time.Second))
	err := cl.ProduceSync(ctxT(t, 20*time.Second), &kgo.Record{Topic: missing, Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("produce to a missing topic without auto-create: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if td, _ := adm.ListTopics(ctxT(t, 10*time.Second), missing); td.Has(missing) {
		t.Errorf("topic %s was created although the client did not allow it", missing)
	}
	auto := uniq("auto")
	acl := newClient(t, kgo.AllowAutoTopicCreation())
	if err := acl.ProduceSync(ctxT(t, 20*time.Second), &kgo.Record{Topic: auto, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce with AllowAutoTopicCreation: %v", err)
	}
	td, err := adm.ListTopics(ctxT(t, 10*time.Second), auto)
	if err != nil || !td.Has(auto) || len(td[auto].Partitions) != 1 {
		t.Fatalf("auto-created topic: %v %+v", err, td[auto])
	}
}

// read_committed consumers see everything (no transactions: LSO == HWM), and
// a record larger than the per-partition fetch size still comes back (KIP-74).
func TestKgoReadCommittedAndLargeRecord(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	big := make([]byte, 600_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	cl := newClient(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
	rs := []*kgo.Record{{Topic: topic, Value: []byte("small")}, {Topic: topic, Value: big}, {Topic: topic, Value: []byte("after")}}
	for _, r := range rs { // one batch each
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := consumeN(t, map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}, 3,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxPartitionBytes(1000), kgo.FetchMaxBytes(2000))
	if string(got[0].Value) != "small" || len(got[1].Value) != len(big) || string(got[2].Value) != "after" {
		t.Fatalf("records: %q, %d bytes, %q", got[0].Value, len(got[1].Value), got[2].Value)
	}
	for i := range big {
		if got[1].Value[i] != big[i] {
			t.Fatalf("large record differs at byte %d", i)
		}
	}
}

// Four members join one after another (cooperative-sticky, incremental
// rebalances): at the end each owns 2 or 3 of 10 partitions, no partition
// twice. Then partitions are added: the leader notices the new partition count
// and the group rebalances onto 14 partitions.
func TestGroupFourMembersAndNewPartitions(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 10, nil)
	group := uniq("four")
	var ms []*member
	spread := func(total int) func() bool {
		return func() bool {
			seen := map[int32]bool{}
			for _, m := range ms {
				o := m.owned()
				if len(o) < total/len(ms) || len(o) > (total+len(ms)-1)/len(ms) {
					return false
				}
				for _, p := range o {
					if seen[p] {
						return false
					}
					seen[p] = true
				}
			}
			return len(seen) == total
		}
	}
	for i := 0; i < 4; i++ {
		ms = append(ms, startMember(t, fmt.Sprintf("m%d", i), group, topic, kgo.CooperativeStickyBalancer()))
		waitFor(t, 45*time.Second, fmt.Sprintf("%d members share 10 partitions", len(ms)), spread(10))
	}
	dg, err := adm.DescribeGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if d := dg[group]; d.State != "Stable" || len(d.Members) != 4 || len(d.AssignedPartitions()[topic]) != 10 {
		t.Fatalf("DescribeGroups: %s, %d members, %d partitions", d.State, len(d.Members), len(d.AssignedPartitions()[topic]))
	}
	if r, err := adm.CreatePartitions(ctxT(t, 10*time.Second), 4, topic); err != nil || r[topic].Err != nil {
		t.Fatalf("CreatePartitions: %v %v", err, r[topic].Err)
	}
	waitFor(t, 60*time.Second, "4 members share 14 partitions", spread(14))
}
