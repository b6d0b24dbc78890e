/** Pub/sub: the hub service, its event logs, and the client helper for hub topics. */
export { createHub, minBookmarkIntervalMs, subscriptionIdKey, subscriptionStartKey } from "./hub.js";
export { groupCreatedKey, memberIdKey, minAckDeadlineMs } from "./consume-stream.js";
export type { Hub, HubOptions, HubStats, StreamOptions } from "./hub.js";
export { createMemoryLog, defaultMaxTotalBytes } from "./memory-log.js";
export type { MemoryLogOptions } from "./memory-log.js";
export { createRedisLog } from "./redis-log.js";
export type { RedisLogOptions } from "./redis-log.js";
export { firstEventIdKey, oldestPositionKey, eventBytes, eventOverheadBytes, retentionDefaults } from "./event-log.js";
export type { EventLog, StoredEvent, AppendResult, TopicInfo, Follower, FollowListener, RetentionOptions, LogUsage } from "./event-log.js";
export type { EventMapper } from "./subscription.js";
export { subscribeTopic } from "./subscribe-topic.js";
export { consumeGroup } from "./consume-group.js";
export type { ConsumeGroupOptions, GroupMessage } from "./consume-group.js";
export type { ConsumerGroups, GroupDelivery, GroupStart } from "./event-log.js";
export type { SubscribeTopicOptions } from "./subscribe-topic.js";
export { PubSubService, EventSchema } from "../../../gen/rill/pubsub/v1/pubsub_pb.js";
export type { Event } from "../../../gen/rill/pubsub/v1/pubsub_pb.js";
