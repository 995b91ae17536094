package fjordtest

import (
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A fetch outside the log (below the start after DeleteRecords, or past the
// end) is OFFSET_OUT_OF_RANGE; franz-go then applies ConsumeResetOffset.
func TestKgoOffsetOutOfRangeReset(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	produceTo(t, topic, 0, 10, nil)
	var os kadm.Offsets
	os.AddOffset(topic, 0, 6, -1)
	if _, err := adm.DeleteRecords(ctxT(t, 10*time.Second), os); err != nil {
		t.Fatal(err)
	}
	// below the log start → reset to the start (6)
	got := consumeN(t, map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(2)}}, 4,
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got[0].Offset != 6 {
		t.Fatalf("after out-of-range below the start: first offset %d, want 6", got[0].Offset)
	}
	// past the end → reset to the end: only new records
	cl := newClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(500)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(200*time.Millisecond))
	// let the client hit the out-of-range and reset before producing
	probe := ctxT(t, 2*time.Second)
	if fs := cl.PollFetches(probe); len(fs.Records()) != 0 {
		t.Fatalf("past the end: got records %v", fs.Records())
	}
	produceTo(t, topic, 0, 1, nil)
	more := pollN(t, cl, 1, 20*time.Second)
	if more[0].Offset != 10 {
		t.Fatalf("after out-of-range past the end: offset %d, want 10", more[0].Offset)
	}
	// the raw answer
	req := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition = 0
	lp.Timestamp = -2 // earliest
	lp.CurrentLeaderEpoch = -1
	lt.Partitions = append(lt.Partitions, lp)
	req.Topics = append(req.Topics, lt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), newClient(t))
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != 6 {
		t.Errorf("ListOffsets earliest after DeleteRecords: err %d offset %d", p.ErrorCode, p.Offset)
	}
}

// Sarama: ConsumePartition below the log start is ErrOffsetOutOfRange; a
// record bigger than Consumer.Fetch.Default is still read (KIP-74).
func TestSaramaOutOfRangeAndLargeRecord(t *testing.T) {
	attachLog(t, shared)
	adm := saramaAdmin(t)
	topic := saramaTopic(t, adm, 1)
	produceTo(t, topic, 0, 5, nil)
	if err := adm.DeleteRecords(topic, map[int32]int64{0: 3}); err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewConsumer([]string{shared.Addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ConsumePartition(topic, 0, 1); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		t.Errorf("ConsumePartition below the log start: %v, want ErrOffsetOutOfRange", err)
	}
	big := make([]byte, 300_000)
	for i := range big {
		big[i] = byte(i)
	}
	cl := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Value: big}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := saramaConfig()
	cfg.Consumer.Fetch.Default = 1024
	c2, err := sarama.NewConsumer([]string{shared.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	pc, err := c2.ConsumePartition(topic, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		if m.Offset != 5 || len(m.Value) != len(big) || m.Value[299_999] != big[299_999] {
			t.Fatalf("large record: offset %d, %d bytes", m.Offset, len(m.Value))
		}
	case err := <-pc.Errors():
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("large record not delivered")
	}
}

// CreateTopics with an explicit replica assignment, one naming a broker that
// does not exist (Kafka: INVALID_REPLICA_ASSIGNMENT "no broker with that ID is
// registered"), and one mixing an assignment with a partition count (Kafka:
// INVALID_REQUEST). (Fjord used to answer INVALID_REPLICATION_FACTOR and
// INVALID_CONFIG for these; fixed.)
func TestKadmCreateTopicReplicaAssignment(t *testing.T) {
	setup(t)
	raw := newClient(t)
	create := func(name string, replicas ...[]int32) kmsg.CreateTopicsResponseTopic {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = name
		rt.NumPartitions = -1
		rt.ReplicationFactor = -1
		for i, r := range replicas {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition = int32(i)
			a.Replicas = r
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 10000
		resp, err := req.RequestWith(ctxT(t, 15*time.Second), raw)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0]
	}
	name := uniq("assign")
	if r := create(name, []int32{1}, []int32{1}, []int32{1}); r.ErrorCode != 0 || r.NumPartitions != 3 {
		t.Fatalf("create with assignment: err %v partitions %d", kerr.ErrorForCode(r.ErrorCode), r.NumPartitions)
	}
	td, err := newAdmin(t).ListTopics(ctxT(t, 10*time.Second), name)
	if err != nil || len(td[name].Partitions) != 3 {
		t.Fatalf("ListTopics: %v %+v", err, td[name])
	}
	if r := create(uniq("assign-bad"), []int32{7}); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.InvalidReplicaAssignment) {
		t.Errorf("assignment to broker 7: %v, want INVALID_REPLICA_ASSIGNMENT", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := create(uniq("assign-dup"), []int32{1, 1}); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.InvalidReplicaAssignment) {
		t.Errorf("assignment [1 1]: %v, want INVALID_REPLICA_ASSIGNMENT", kerr.ErrorForCode(r.ErrorCode))
	}
	both := kmsg.NewPtrCreateTopicsRequest()
	bt := kmsg.NewCreateTopicsRequestTopic()
	bt.Topic = uniq("assign-both")
	bt.NumPartitions = 1
	bt.ReplicationFactor = -1
	ba := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ba.Replicas = []int32{1}
	bt.ReplicaAssignment = append(bt.ReplicaAssignment, ba)
	both.Topics = append(both.Topics, bt)
	resp, err := both.RequestWith(ctxT(t, 15*time.Second), raw)
	if err != nil {
		t.Fatal(err)
	}
	if e := kerr.ErrorForCode(resp.Topics[0].ErrorCode); !errors.Is(e, kerr.InvalidRequest) {
		t.Errorf("assignment plus num_partitions: %v, want INVALID_REQUEST", e)
	}
}

// Broker configs are described (Kafka lists every broker config, with its
// source). (Fjord used to answer no entries for a BROKER resource; fixed.)
func TestKadmBrokerConfigs(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := adm.DescribeBrokerConfigs(ctx, md.Brokers[0].NodeID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc) != 1 || rc[0].Err != nil || len(rc[0].Configs) == 0 {
		t.Fatalf("DescribeBrokerConfigs: %+v", rc)
	}
	keys := map[string]string{}
	for _, c := range rc[0].Configs {
		keys[c.Key] = c.MaybeValue()
	}
	for _, k := range []string{"num.partitions", "message.max.bytes", "log.retention.ms"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("broker config %s not described (have %d keys)", k, len(keys))
		}
	}
}

// The legacy (non-incremental) AlterConfigs replaces a topic's whole dynamic
// config, as in Kafka; validate-only changes nothing.
func TestKadmAlterConfigsState(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "retention.ms": kadm.StringPtr("1000000")})
	ar, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("2000000")}}, topic)
	if err != nil || ar[0].Err != nil {
		t.Fatalf("AlterTopicConfigsState: %v %+v", err, ar)
	}
	if v := configOf(t, adm, topic, "retention.ms"); v.MaybeValue() != "2000000" {
		t.Errorf("retention.ms after AlterConfigs: %q", v.MaybeValue())
	}
	if v := configOf(t, adm, topic, "cleanup.policy"); v.MaybeValue() != "delete" || v.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("cleanup.policy after a full AlterConfigs without it: %q (%v), want the default delete", v.MaybeValue(), v.Source)
	}
	// validate-only changes nothing
	if _, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("5")}}, topic); err != nil {
		t.Fatal(err)
	}
	if v := configOf(t, adm, topic, "retention.ms"); v.MaybeValue() != "2000000" {
		t.Errorf("validate-only alter changed retention.ms to %q", v.MaybeValue())
	}
}

// Fetch by topic id (Fetch v13+): after a topic is deleted and re-created
// under the same name, a fetch by the old id is UNKNOWN_TOPIC_ID and the new
// id reads the new log. (franz-go deliberately keeps failing on the old id
// until the topic is purged from the client and added again.)
func TestKgoTopicRecreatedSameName(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 60*time.Second)
	topic := createTopic(t, adm, 1, nil)
	produceTo(t, topic, 0, 3, nil)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	oldID := td[topic].ID
	cl := newClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.MetadataMaxAge(500*time.Millisecond), kgo.MetadataMinAge(100*time.Millisecond))
	if got := pollN(t, cl, 3, 20*time.Second); got[2].Offset != 2 {
		t.Fatalf("first topic: %+v", got[2])
	}
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	cr, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err != nil {
		t.Fatalf("re-create: %v", err)
	}
	if cr.ID == oldID {
		t.Fatalf("re-created topic kept the old id %v", oldID)
	}
	produceTo(t, topic, 0, 2, nil)

	fetch := func(id [16]byte) kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 13
		req.ReplicaID = -1
		req.MaxWaitMillis = 100
		req.MaxBytes = 1 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.TopicID = id
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = 0
		fp.FetchOffset = 0
		fp.PartitionMaxBytes = 1 << 20
		fp.CurrentLeaderEpoch = -1
		fp.LogStartOffset = -1
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		resp, err := req.RequestWith(ctx, newClient(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch response shape: %+v", resp)
		}
		return resp.Topics[0].Partitions[0]
	}
	if p := fetch(oldID); !errors.Is(kerr.ErrorForCode(p.ErrorCode), kerr.UnknownTopicID) {
		t.Errorf("fetch by the deleted topic's id: %v, want UNKNOWN_TOPIC_ID", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := fetch(cr.ID); p.ErrorCode != 0 || p.HighWatermark != 2 || len(p.RecordBatches) == 0 {
		t.Errorf("fetch by the new id: err %v hwm %d %d bytes", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, len(p.RecordBatches))
	}
	cl.PurgeTopicsFromClient(topic)
	cl.AddConsumeTopics(topic)
	got := pollN(t, cl, 2, 30*time.Second)
	if string(got[0].Key) != "k0" || got[0].Offset != 0 || got[1].Offset != 1 {
		t.Fatalf("after re-creation: %+v", got)
	}
}

// Offset commit/delete edge cases as Kafka answers them: metadata over
// offset.metadata.max.bytes (4096), a topic that does not exist, a partition
// that does not exist, deleting an unknown group.
func TestKadmOffsetCommitErrors(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 1, nil)
	group := uniq("commit-err")
	commit := func(topic string, p int32, meta string) error {
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: 1, LeaderEpoch: -1, Metadata: meta})
		r, err := adm.CommitOffsets(ctx, group, os)
		if err != nil {
			return err
		}
		return r.Error()
	}
	long := string(make([]byte, 5000))
	if err := commit(topic, 0, long); !errors.Is(err, kerr.OffsetMetadataTooLarge) {
		t.Errorf("commit with 5000 bytes of metadata: %v, want OFFSET_METADATA_TOO_LARGE", err)
	}
	if err := commit(uniq("nosuchtopic"), 0, ""); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("commit for a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if err := commit(topic, 7, ""); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("commit for partition 7 of a 1-partition topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if err := commit(topic, 0, "ok"); err != nil {
		t.Errorf("valid commit: %v", err)
	}
	unknown := uniq("nogroup")
	dr, err := adm.DeleteGroups(ctx, unknown)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dr[unknown].Err, kerr.GroupIDNotFound) {
		t.Errorf("DeleteGroups of an unknown group: %v, want GROUP_ID_NOT_FOUND", dr[unknown].Err)
	}
}

// Produce / ListOffsets for a partition that does not exist.
func TestKgoMissingPartition(t *testing.T) {
	adm := setup(t)
	ctx := ctxT(t, 30*time.Second)
	topic := createTopic(t, adm, 1, nil)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// straight to the broker: the client would refuse unknown partitions itself
	raw := newClient(t)
	if _, err := raw.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatal(err)
	}
	b := raw.Broker(int(td[topic].Partitions[0].Leader))
	preq := kmsg.NewPtrProduceRequest()
	preq.Acks = 1
	preq.TimeoutMillis = 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = topic
	pt.TopicID = td[topic].ID // Produce v13+ names topics by id
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 5
	pp.Records = oneRecordBatch()
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	resp, err := b.Request(ctx, preq)
	if err != nil {
		t.Fatal(err)
	}
	presp := resp.(*kmsg.ProduceResponse)
	if e := kerr.ErrorForCode(presp.Topics[0].Partitions[0].ErrorCode); !errors.Is(e, kerr.UnknownTopicOrPartition) {
		t.Errorf("produce to partition 5 of a 1-partition topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", e)
	}
	lreq := kmsg.NewPtrListOffsetsRequest()
	lreq.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition = 5
	lp.Timestamp = -1
	lp.CurrentLeaderEpoch = -1
	lt.Partitions = append(lt.Partitions, lp)
	lreq.Topics = append(lreq.Topics, lt)
	resp, err = b.Request(ctx, lreq)
	if err != nil {
		t.Fatal(err)
	}
	lresp := resp.(*kmsg.ListOffsetsResponse)
	if e := kerr.ErrorForCode(lresp.Topics[0].Partitions[0].ErrorCode); !errors.Is(e, kerr.UnknownTopicOrPartition) {
		t.Errorf("ListOffsets for partition 5: %v, want UNKNOWN_TOPIC_OR_PARTITION", e)
	}
	// and the valid partition accepted the same batch
	pp.Partition = 0
	preq.Topics[0].Partitions[0] = pp
	resp, err = b.Request(ctx, preq)
	if err != nil {
		t.Fatal(err)
	}
	presp = resp.(*kmsg.ProduceResponse)
	if p := presp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Errorf("produce to partition 0: %v base offset %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
}

// oneRecordBatch encodes a v2 record batch holding one record (value "raw").
func oneRecordBatch() []byte {
	rec := kmsg.NewRecord()
	rec.Value = []byte("raw")
	rec.Key = nil
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // body length (a 1-byte varint here)
	recBytes := rec.AppendTo(nil)
	b := kmsg.NewRecordBatch()
	b.FirstOffset = 0
	b.Magic = 2
	b.Attributes = 0
	b.LastOffsetDelta = 0
	b.FirstTimestamp = time.Now().UnixMilli()
	b.MaxTimestamp = b.FirstTimestamp
	b.ProducerID = -1
	b.ProducerEpoch = -1
	b.FirstSequence = -1
	b.NumRecords = 1
	b.Records = recBytes
	raw := b.AppendTo(nil)
	// Length = bytes after the length field; CRC-32C over attributes..end
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}
