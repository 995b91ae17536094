package fjordtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type kadmListedOffset = kadm.ListedOffset

func produceTo(t *testing.T, topic string, partition int32, n int, ts func(i int) time.Time) []*kgo.Record {
	t.Helper()
	cl := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Partition: partition, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
		if ts != nil {
			rs[i].Timestamp = ts(i)
		}
	}
	if err := cl.ProduceSync(ctxT(t, 15*time.Second), rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, err)
	}
	return rs
}

func TestKadmCreateListDeleteTopics(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	a, b := uniq("adm-a"), uniq("adm-b")
	resp, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{a, b} {
		r := resp[n]
		if r.Err != nil {
			t.Fatalf("create %s: %v %s", n, r.Err, r.ErrMessage)
		}
		if r.NumPartitions != 3 || r.ReplicationFactor != 1 {
			t.Errorf("create %s: partitions %d rf %d", n, r.NumPartitions, r.ReplicationFactor)
		}
		if r.ID == (kadm.TopicID{}) {
			t.Errorf("create %s: zero topic id", n)
		}
	}
	td, err := adm.ListTopics(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{a, b} {
		d := td[n]
		if d.Err != nil || len(d.Partitions) != 3 || d.ID != resp[n].ID {
			t.Fatalf("ListTopics %s: err %v, %d partitions, id %v vs %v", n, d.Err, len(d.Partitions), d.ID, resp[n].ID)
		}
		for p, pd := range d.Partitions {
			if pd.Leader != 1 && pd.Leader < 0 || pd.Err != nil || len(pd.Replicas) != 1 {
				t.Fatalf("%s/%d: leader %d replicas %v err %v", n, p, pd.Leader, pd.Replicas, pd.Err)
			}
		}
	}
	all, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !all.Has(a) || !all.Has(b) {
		t.Fatalf("ListTopics() without names misses %s or %s", a, b)
	}
	if all.Has("__consumer_offsets") {
		t.Errorf("ListTopics (no internal) lists __consumer_offsets")
	}

	// existing topic
	createErr := func(partitions int32, rf int16, name string) error {
		r, err := adm.CreateTopics(ctx, partitions, rf, nil, name)
		if err != nil {
			t.Fatalf("CreateTopics %q: request failed: %v", name, err)
		}
		return r[name].Err
	}
	if err := createErr(1, 1, a); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("create existing: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	// invalid names
	for _, bad := range []string{"bad/name", "..", "with space", strings.Repeat("x", 250)} {
		if err := createErr(1, 1, bad); !errors.Is(err, kerr.InvalidTopicException) {
			t.Errorf("create %q: %v, want INVALID_TOPIC_EXCEPTION", bad, err)
		}
	}
	// invalid partition count / replication factor
	if err := createErr(0, 1, uniq("zero")); !errors.Is(err, kerr.InvalidPartitions) {
		t.Errorf("create with 0 partitions: %v, want INVALID_PARTITIONS", err)
	}
	if err := createErr(1, 3, uniq("rf3")); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Errorf("create with rf 3 on one broker: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	// validate-only creates nothing
	name := uniq("validate")
	vr, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, name)
	if err != nil || vr[name].Err != nil {
		t.Fatalf("ValidateCreateTopics: %v / %v", err, vr[name].Err)
	}
	if td, _ := adm.ListTopics(ctx, name); td.Has(name) {
		t.Errorf("validate-only create created %s", name)
	}

	// delete
	dr, err := adm.DeleteTopics(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{a, b} {
		if dr[n].Err != nil {
			t.Fatalf("delete %s: %v", n, dr[n].Err)
		}
	}
	waitFor(t, 10*time.Second, "deleted topics gone from ListTopics", func() bool {
		td, err := adm.ListTopics(context.Background())
		return err == nil && !td.Has(a) && !td.Has(b)
	})
	dr, err = adm.DeleteTopics(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dr[a].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("delete missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", dr[a].Err)
	}
}

func TestKadmCreatePartitions(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 1, nil)
	r, err := adm.CreatePartitions(ctx, 3, topic) // add 3 → 4
	if err != nil || r[topic].Err != nil {
		t.Fatalf("CreatePartitions: %v / %v", err, r[topic].Err)
	}
	waitFor(t, 10*time.Second, "4 partitions", func() bool {
		td, err := adm.ListTopics(context.Background(), topic)
		return err == nil && len(td[topic].Partitions) == 4
	})
	// the new partitions accept records
	rs := produceTo(t, topic, 3, 2, nil)
	if rs[1].Offset != 1 {
		t.Fatalf("new partition 3: offset %d", rs[1].Offset)
	}
	// shrinking or keeping the count is refused
	r, err = adm.UpdatePartitions(ctx, 2, topic)
	if err != nil || !errors.Is(r[topic].Err, kerr.InvalidPartitions) {
		t.Errorf("UpdatePartitions down to 2: %v / %v, want INVALID_PARTITIONS", err, r[topic].Err)
	}
	missing := uniq("missing")
	r, err = adm.CreatePartitions(ctx, 1, missing)
	if err != nil || !errors.Is(r[missing].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("CreatePartitions on missing topic: %v / %v, want UNKNOWN_TOPIC_OR_PARTITION", err, r[missing].Err)
	}
}

func configOf(t *testing.T, adm *kadm.Client, topic, key string) kadm.Config {
	t.Helper()
	rc, err := adm.DescribeTopicConfigs(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On(topic, nil)
	if err != nil || c.Err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v / %v", topic, err, c.Err)
	}
	for _, cfg := range c.Configs {
		if cfg.Key == key {
			return cfg
		}
	}
	t.Fatalf("config %s not described for %s", key, topic)
	return kadm.Config{}
}

func TestKadmTopicConfigs(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})

	c := configOf(t, adm, topic, "cleanup.policy")
	if c.MaybeValue() != "compact" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("cleanup.policy = %q source %v, want compact DYNAMIC_TOPIC_CONFIG", c.MaybeValue(), c.Source)
	}
	def := configOf(t, adm, topic, "retention.ms")
	if def.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms not set yet but source is dynamic")
	}

	// incremental set of one key leaves the others alone
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("123456")},
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("200000")},
	}, topic)
	if err != nil || ar[0].Err != nil {
		t.Fatalf("AlterTopicConfigs set: %v / %+v", err, ar)
	}
	if v := configOf(t, adm, topic, "retention.ms"); v.MaybeValue() != "123456" || v.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms after set: %q %v", v.MaybeValue(), v.Source)
	}
	if v := configOf(t, adm, topic, "cleanup.policy"); v.MaybeValue() != "compact" {
		t.Fatalf("incremental alter clobbered cleanup.policy: %q", v.MaybeValue())
	}
	// max.message.bytes takes effect: a bigger record is refused
	// (uncompressed: the limit applies to the batch as sent)
	cl := newClient(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
	big := &kgo.Record{Topic: topic, Key: []byte("k"), Value: make([]byte, 300_000)}
	if err := cl.ProduceSync(ctxT(t, 15*time.Second), big).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("300 kB record with max.message.bytes=200000: %v, want MESSAGE_TOO_LARGE", err)
	}
	// a compacted topic refuses records without a key
	if err := cl.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Topic: topic, Value: []byte("no key")}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Errorf("keyless record on a compacted topic: %v, want INVALID_RECORD", err)
	}
	small := &kgo.Record{Topic: topic, Key: []byte("k"), Value: make([]byte, 100_000)}
	if err := cl.ProduceSync(ctxT(t, 15*time.Second), small).FirstErr(); err != nil {
		t.Errorf("100 kB record with max.message.bytes=200000: %v", err)
	}
	// delete returns to the default
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic)
	if err != nil || ar[0].Err != nil {
		t.Fatalf("AlterTopicConfigs delete: %v / %+v", err, ar)
	}
	if v := configOf(t, adm, topic, "retention.ms"); v.MaybeValue() != def.MaybeValue() || v.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms after delete: %q %v, want default %q", v.MaybeValue(), v.Source, def.MaybeValue())
	}
	// unknown key and bad value are refused
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: kadm.StringPtr("1")}}, topic)
	if err != nil || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
		t.Errorf("alter unknown key: %v / %v, want INVALID_CONFIG", err, ar[0].Err)
	}
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("soon")}}, topic)
	if err != nil || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
		t.Errorf("alter retention.ms=soon: %v / %v, want INVALID_CONFIG", err, ar[0].Err)
	}
	// describing a missing topic fails
	missing := uniq("missing")
	rc, err := adm.DescribeTopicConfigs(ctx, missing)
	if err == nil {
		c, _ := rc.On(missing, nil)
		err = c.Err
	}
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("describe configs of missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

func TestKadmGroupsListDescribe(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 3, nil)
	group := uniq("grp")
	m := startMember(t, "m", group, topic, kgo.CooperativeStickyBalancer())
	waitFor(t, 30*time.Second, "member owns 3 partitions", func() bool { return len(m.owned()) == 3 })

	lg, err := adm.ListGroups(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := lg[group]
	if !ok || g.ProtocolType != "consumer" {
		t.Fatalf("ListGroups: %v (ok=%v)", g, ok)
	}
	if g.State != "" && g.State != "Stable" {
		t.Errorf("ListGroups state %q, want Stable", g.State)
	}
	stable, err := adm.ListGroups(ctxT(t, 10*time.Second), "Stable")
	if err != nil || !contains(stable.Groups(), group) {
		t.Errorf("ListGroups(Stable) misses %s: %v %v", group, err, stable.Groups())
	}
	empty, err := adm.ListGroups(ctxT(t, 10*time.Second), "Empty")
	if err != nil || contains(empty.Groups(), group) {
		t.Errorf("ListGroups(Empty) lists the stable group %s: %v", group, err)
	}

	dg, err := adm.DescribeGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	d := dg[group]
	if d.Err != nil || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "cooperative-sticky" || len(d.Members) != 1 {
		t.Fatalf("DescribeGroups: err %v state %q type %q protocol %q members %d", d.Err, d.State, d.ProtocolType, d.Protocol, len(d.Members))
	}
	mem := d.Members[0]
	if mem.MemberID == "" || mem.ClientID == "" || mem.ClientHost == "" {
		t.Errorf("member fields: %+v", mem)
	}
	join, ok := mem.Join.AsConsumer()
	if !ok || len(join.Topics) != 1 || join.Topics[0] != topic {
		t.Errorf("member join metadata: %+v ok=%v", join, ok)
	}
	if got := d.AssignedPartitions()[topic]; len(got) != 3 {
		t.Errorf("assigned partitions: %v", got)
	}
	unknown := uniq("nogroup")
	dg, err = adm.DescribeGroups(ctxT(t, 10*time.Second), unknown)
	if err != nil {
		t.Fatal(err)
	}
	// DescribeGroups v6 (KIP-1043): GROUP_ID_NOT_FOUND, state Dead
	if u := dg[unknown]; !errors.Is(u.Err, kerr.GroupIDNotFound) || u.State != "Dead" || len(u.Members) != 0 {
		t.Errorf("describe unknown group: err %v state %q members %d, want GROUP_ID_NOT_FOUND / Dead", u.Err, u.State, len(u.Members))
	}

	// after the member leaves the group is Empty
	m.stop()
	waitFor(t, 15*time.Second, "group Empty", func() bool {
		dg, err := adm.DescribeGroups(context.Background(), group)
		return err == nil && dg[group].State == "Empty" && len(dg[group].Members) == 0
	})
	// and can be deleted
	del, err := adm.DeleteGroup(ctxT(t, 10*time.Second), group)
	if err != nil || del.Err != nil {
		t.Fatalf("DeleteGroup: %v / %v", err, del.Err)
	}
	lg, err = adm.ListGroups(ctxT(t, 10*time.Second))
	if err != nil || contains(lg.Groups(), group) {
		t.Errorf("deleted group still listed: %v", err)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestKadmCommitFetchDeleteOffsets(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 2, nil)
	produceTo(t, topic, 0, 10, nil)
	produceTo(t, topic, 1, 10, nil)
	group := uniq("offs")

	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 3, LeaderEpoch: -1, Metadata: "meta-0"})
	os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 7, LeaderEpoch: -1})
	cr, err := adm.CommitOffsets(ctx, group, os)
	if err != nil || cr.Error() != nil {
		t.Fatalf("CommitOffsets: %v / %v", err, cr.Error())
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil || fo.Error() != nil {
		t.Fatalf("FetchOffsets: %v / %v", err, fo.Error())
	}
	if o, ok := fo.Lookup(topic, 0); !ok || o.At != 3 || o.Metadata != "meta-0" {
		t.Fatalf("fetched p0: %+v ok=%v", o, ok)
	}
	if o, ok := fo.Lookup(topic, 1); !ok || o.At != 7 {
		t.Fatalf("fetched p1: %+v ok=%v", o, ok)
	}
	ft, err := adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil || len(ft[topic]) != 2 {
		t.Fatalf("FetchOffsetsForTopics: %v %+v", err, ft)
	}
	// ListGroups shows the group (Empty, with committed offsets)
	lg, err := adm.ListGroups(ctx)
	if err != nil || !contains(lg.Groups(), group) {
		t.Fatalf("ListGroups misses offsets-only group %s: %v", group, err)
	}

	// DeleteOffsets of one partition
	var s kadm.TopicsSet
	s.Add(topic, 0)
	dr, err := adm.DeleteOffsets(ctx, group, s)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := dr.Lookup(topic, 0); !ok || e != nil {
		t.Fatalf("DeleteOffsets p0: %v ok=%v", e, ok)
	}
	fo, err = adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fo.Lookup(topic, 0); ok && o.At >= 0 {
		t.Fatalf("p0 still committed after DeleteOffsets: %+v", o)
	}
	if o, ok := fo.Lookup(topic, 1); !ok || o.At != 7 {
		t.Fatalf("p1 lost by DeleteOffsets of p0: %+v", o)
	}
	// deleting offsets of a group with an active member subscribed to the topic is refused
	m := startMember(t, "m", group, topic, kgo.CooperativeStickyBalancer())
	waitFor(t, 30*time.Second, "member assigned", func() bool { return len(m.owned()) == 2 })
	var s1 kadm.TopicsSet
	s1.Add(topic, 1)
	dr, err = adm.DeleteOffsets(ctx, group, s1)
	if err == nil {
		err, _ = dr.Lookup(topic, 1)
	}
	if !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Errorf("DeleteOffsets on a subscribed topic: %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}
	// the member started from the committed offset 7 on p1 and the reset (start) on p0
	waitFor(t, 20*time.Second, "member consumed", func() bool {
		got := m.records.snapshot()
		return len(got) == 10+3
	})
	got := m.records.snapshot()
	if got["1@6"] != 0 || got["1@7"] != 1 || got["0@0"] != 1 {
		t.Errorf("member did not resume from committed offsets: %v", got)
	}
}

func TestKadmLag(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 2, nil)
	produceTo(t, topic, 0, 10, nil)
	produceTo(t, topic, 1, 4, nil)
	group := uniq("lag")
	var os kadm.Offsets
	os.AddOffset(topic, 0, 6, -1)
	os.AddOffset(topic, 1, 4, -1)
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatal(err)
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	l := lags[group]
	if l.Error() != nil || l.State != "Empty" {
		t.Fatalf("Lag: err %v state %q", l.Error(), l.State)
	}
	want := map[int32]int64{0: 4, 1: 0}
	for p, w := range want {
		gl, ok := l.Lag.Lookup(topic, p)
		if !ok || gl.Err != nil || gl.Lag != w || gl.End.Offset != map[int32]int64{0: 10, 1: 4}[p] {
			t.Errorf("lag p%d: %+v ok=%v, want %d", p, gl, ok, w)
		}
	}
	if tl := l.Lag.TotalByTopic()[topic]; tl.Lag != 4 {
		t.Errorf("total topic lag %d, want 4", tl.Lag)
	}
	// the same via DescribeGroups + ListEndOffsets + CalculateGroupLag
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	calc := kadm.CalculateGroupLag(dg[group], fo, ends)
	if gl, _ := calc.Lookup(topic, 0); gl.Lag != 4 {
		t.Errorf("CalculateGroupLag p0 %d, want 4", gl.Lag)
	}
}

func TestKadmListOffsets(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 2, nil)
	base := time.UnixMilli(1_650_000_000_000)
	produceTo(t, topic, 0, 10, func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) })

	start, err := adm.ListStartOffsets(ctx, topic)
	if err != nil || start.Error() != nil {
		t.Fatal(err, start.Error())
	}
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || end.Error() != nil {
		t.Fatal(err, end.Error())
	}
	for p, w := range map[int32][2]int64{0: {0, 10}, 1: {0, 0}} {
		s, _ := start.Lookup(topic, p)
		e, _ := end.Lookup(topic, p)
		if s.Offset != w[0] || e.Offset != w[1] {
			t.Errorf("p%d: start %d end %d, want %v", p, s.Offset, e.Offset, w)
		}
	}
	for _, tc := range []struct {
		ms   int64
		want int64
	}{
		{base.UnixMilli() - 1, 0},
		{base.UnixMilli(), 0},
		{base.Add(3*time.Minute).UnixMilli() + 1, 4},
		{base.Add(9 * time.Minute).UnixMilli(), 9},
		{base.Add(time.Hour).UnixMilli(), 10}, // after the last: the end offset (Kafka returns -1 → kadm maps to end)
	} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, tc.ms, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup(topic, 0)
		if o.Err != nil || o.Offset != tc.want {
			t.Errorf("ListOffsetsAfterMilli(%d): offset %d ts %d err %v, want %d", tc.ms, o.Offset, o.Timestamp, o.Err, tc.want)
		}
	}
	mx, err := adm.ListMaxTimestampOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := mx.Lookup(topic, 0); o.Offset != 9 || o.Timestamp != base.Add(9*time.Minute).UnixMilli() {
		t.Errorf("ListMaxTimestampOffsets p0: %+v, want offset 9", o)
	}
	missing := uniq("missing")
	lo, err := adm.ListEndOffsets(ctx, missing)
	if err == nil {
		err = lo.Error()
	}
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("ListEndOffsets of missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

func TestKadmDeleteRecords(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 1, nil)
	produceTo(t, topic, 0, 10, nil)
	var os kadm.Offsets
	os.AddOffset(topic, 0, 6, -1)
	dr, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	r := dr[topic][0]
	if r.Err != nil || r.LowWatermark != 6 {
		t.Fatalf("DeleteRecords: %+v", r)
	}
	start, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := start.Lookup(topic, 0); o.Offset != 6 {
		t.Fatalf("start offset after DeleteRecords: %d, want 6", o.Offset)
	}
	got := consumeN(t, map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}, 4)
	if got[0].Offset != 6 || string(got[0].Key) != "k6" {
		t.Fatalf("first record after DeleteRecords: offset %d key %s", got[0].Offset, got[0].Key)
	}
	// beyond the high watermark is refused
	var beyond kadm.Offsets
	beyond.AddOffset(topic, 0, 50, -1)
	dr, err = adm.DeleteRecords(ctx, beyond)
	if err == nil {
		err = dr[topic][0].Err
	}
	if !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Errorf("DeleteRecords beyond the end: %v, want OFFSET_OUT_OF_RANGE", err)
	}
	// -1 means "up to the high watermark"
	var hw kadm.Offsets
	hw.AddOffset(topic, 0, -1, -1)
	dr, err = adm.DeleteRecords(ctx, hw)
	if err != nil || dr[topic][0].Err != nil || dr[topic][0].LowWatermark != 10 {
		t.Errorf("DeleteRecords(-1): %v %+v, want low watermark 10", err, dr[topic][0])
	}
}

func TestKadmDescribeLogDirs(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 2, nil)
	produceTo(t, topic, 1, 20, nil)
	var s kadm.TopicsSet
	s.Add(topic, 0, 1)
	all, err := adm.DescribeAllLogDirs(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("log dirs of %d brokers, want 1", len(all))
	}
	var found int
	for _, dirs := range all {
		for dir, d := range dirs {
			if d.Err != nil {
				t.Fatalf("dir %s: %v", dir, d.Err)
			}
			if !strings.HasPrefix(dir, shared.DataDir) && dir != shared.DataDir {
				t.Errorf("log dir %q is not under the data dir %q", dir, shared.DataDir)
			}
			for _, p := range []int32{0, 1} {
				if pd, ok := d.Topics.Lookup(topic, p); ok {
					found++
					if p == 1 && pd.Size <= 0 {
						t.Errorf("p1 holds 20 records but size %d", pd.Size)
					}
					if p == 0 && pd.Size != 0 {
						t.Errorf("p0 is empty but size %d", pd.Size)
					}
				}
			}
		}
	}
	if found != 2 {
		t.Fatalf("described %d of 2 partitions", found)
	}
	// without a filter every topic is described
	every, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, dirs := range every {
		for _, d := range dirs {
			if _, ok := d.Topics.Lookup(topic, 1); ok {
				seen = true
			}
		}
	}
	if !seen {
		t.Errorf("DescribeAllLogDirs(nil) does not include %s", topic)
	}
}

func TestKadmBrokerMetadataApiVersions(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 {
		t.Fatalf("brokers: %+v", md.Brokers)
	}
	b := md.Brokers[0]
	if fmt.Sprintf("%s:%d", b.Host, b.Port) != shared.Addr {
		t.Errorf("advertised %s:%d, want %s", b.Host, b.Port, shared.Addr)
	}
	if md.Controller != b.NodeID {
		t.Errorf("controller %d, broker id %d", md.Controller, b.NodeID)
	}
	if md.Cluster == "" {
		t.Errorf("empty cluster id")
	}
	lb, err := adm.ListBrokers(ctx)
	if err != nil || len(lb) != 1 || lb[0].NodeID != b.NodeID {
		t.Errorf("ListBrokers: %v %+v", err, lb)
	}
	av, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := av[b.NodeID]
	if !ok || v.Err != nil {
		t.Fatalf("ApiVersions for node %d: %+v", b.NodeID, v)
	}
	// every API this suite relies on, with at least the versions franz-go needs
	need := map[int16]string{0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
		10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups",
		16: "ListGroups", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId",
		32: "DescribeConfigs", 33: "AlterConfigs", 35: "DescribeLogDirs", 37: "CreatePartitions", 42: "DeleteGroups",
		44: "IncrementalAlterConfigs", 47: "OffsetDelete", 60: "DescribeCluster",
		// transactions (txn_test.go)
		24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit",
		61: "DescribeProducers", 65: "DescribeTransactions", 66: "ListTransactions"}
	for k, name := range need {
		min, max, ok := v.KeyVersions(k)
		if !ok || min > max || max < 0 {
			t.Errorf("ApiVersions: %s (%d) missing or bad: %d..%d ok=%v", name, k, min, max, ok)
		}
	}
	if guess := v.VersionGuess(); guess == "" || strings.Contains(guess, "unknown") {
		t.Logf("kversion guess: %q", guess)
	}
	// a raw request through kgo: Metadata for a single topic that does not exist
	// with auto-creation off in the request is UNKNOWN_TOPIC_OR_PARTITION
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	missing := uniq("missing")
	rt.Topic = &missing
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, newClient(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || kerr.ErrorForCode(resp.Topics[0].ErrorCode) != kerr.UnknownTopicOrPartition {
		t.Errorf("metadata for missing topic without auto-create: %+v", resp.Topics)
	}
}
