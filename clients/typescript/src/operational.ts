// The bodies of operational webhooks: what an environment's operational endpoints are told when
// its customers' endpoints change or their deliveries keep failing. The OpenAPI document
// describes them as one object whose fields depend on `type`; here they are a union
// discriminated on `type`, so that a `switch` on it gives each kind its own `data`.
import type { components } from "./openapi.js";

type Schemas = components["schemas"];

/**
 * Every operational event type, in the order the API documents them: the values of
 * `OperationalEvent["type"]`, and the names an operational endpoint's `eventTypes` filter takes.
 */
export const OPERATIONAL_EVENT_TYPES = [
  "endpoint.created",
  "endpoint.updated",
  "endpoint.deleted",
  "endpoint.enabled",
  "endpoint.disabled",
  "message.attempt.failing",
  "message.attempt.exhausted",
  "message.attempt.recovered",
] as const;

/** The name of an operational event: `endpoint.created`, …, `message.attempt.recovered`. */
export type OperationalEventType = (typeof OPERATIONAL_EVENT_TYPES)[number];

/** The endpoint an operational event is about: `data` of every event, whatever its type. */
export interface OperationalEndpointData {
  /** The endpoint's application. */
  appId: string;
  /** The application's uid; `null` when it has none. */
  appUid: string | null;
  /** The endpoint. */
  endpointId: string;
  /** The endpoint's uid; `null` when it has none. */
  endpointUid: string | null;
}

/**
 * Why an endpoint was disabled: `manual` (a request set `enabled: false`) or `automatic` (every
 * delivery to it failed for `OCTOHOOKS_ENDPOINT_DISABLE_AFTER`, or it answered 410 Gone).
 */
export type OperationalDisableTrigger = Schemas["DisableTrigger"];

/** `data` of `endpoint.disabled`: the endpoint, who disabled it, and since when it was failing. */
export interface OperationalEndpointDisabledData extends OperationalEndpointData {
  /** By hand or automatically. */
  trigger: OperationalDisableTrigger;
  /** Since when every delivery to it failed (epoch ms); `null` when it was not failing. */
  failSince: number | null;
}

/** The attempt that raised a `message.attempt.*` event. */
export interface OperationalLastAttempt {
  /** The attempt, as the attempt routes know it (`messageAttempt.get`). */
  id: string;
  /** The receiver's status code; 0 when no answer came (timeout, connection refused). */
  responseStatusCode: number;
  /** When it was made (epoch ms). */
  timestamp: number;
}

/** `data` of the `message.attempt.*` events: the endpoint, the message and the attempt. */
export interface OperationalMessageAttemptData extends OperationalEndpointData {
  /** The message whose delivery to the endpoint this is about. */
  msgId: string;
  /** The message's uid; `null` when it has none. */
  msgUid: string | null;
  /** The attempt that raised the event. */
  lastAttempt: OperationalLastAttempt;
}

/** The envelope every operational event shares: its type, when it happened, and its data. */
interface Envelope<T extends OperationalEventType, D> {
  /** What happened. */
  type: T;
  /** When the change was made or the attempt recorded (epoch ms). */
  timestamp: number;
  /** What it happened to. */
  data: D;
}

/** An endpoint was created. */
export type EndpointCreatedEvent = Envelope<"endpoint.created", OperationalEndpointData>;
/** An endpoint's settings changed (other than being enabled or disabled). */
export type EndpointUpdatedEvent = Envelope<"endpoint.updated", OperationalEndpointData>;
/** An endpoint was deleted, by itself or with its application. */
export type EndpointDeletedEvent = Envelope<"endpoint.deleted", OperationalEndpointData>;
/** A disabled endpoint was enabled. */
export type EndpointEnabledEvent = Envelope<"endpoint.enabled", OperationalEndpointData>;
/** An endpoint was disabled, by hand or because it kept failing (see `data.trigger`). */
export type EndpointDisabledEvent = Envelope<"endpoint.disabled", OperationalEndpointDisabledData>;
/** A message failed four scheduled attempts in a row to one endpoint; retries go on. */
export type MessageAttemptFailingEvent = Envelope<
  "message.attempt.failing",
  OperationalMessageAttemptData
>;
/** A message's last scheduled attempt to one endpoint failed: it is not retried any more. */
export type MessageAttemptExhaustedEvent = Envelope<
  "message.attempt.exhausted",
  OperationalMessageAttemptData
>;
/**
 * A message was delivered to an endpoint, by a retry or a resend, after failing there at least
 * four times in a row (so after `message.attempt.failing` was raised for it).
 */
export type MessageAttemptRecoveredEvent = Envelope<
  "message.attempt.recovered",
  OperationalMessageAttemptData
>;

/**
 * The body of an operational webhook, discriminated on `type`: after
 * `if (event.type === "endpoint.disabled")`, `event.data.trigger` is known, and only the
 * `message.attempt.*` events have `data.msgId` and `data.lastAttempt`.
 *
 * ```ts
 * const event = new Webhook(secret).verify(body, headers);
 * if (isOperationalEvent(event) && event.type === "message.attempt.exhausted") {
 *   page(`${event.data.endpointId} gave up on ${event.data.msgId}`);
 * }
 * ```
 */
export type OperationalEvent =
  | EndpointCreatedEvent
  | EndpointUpdatedEvent
  | EndpointDeletedEvent
  | EndpointEnabledEvent
  | EndpointDisabledEvent
  | MessageAttemptFailingEvent
  | MessageAttemptExhaustedEvent
  | MessageAttemptRecoveredEvent;

/**
 * The member of `OperationalEvent` whose `type` is `T`, for a handler of one type:
 * `OperationalEventOf<"endpoint.disabled">`.
 */
export type OperationalEventOf<T extends OperationalEventType> = Extract<
  OperationalEvent,
  { type: T }
>;

const KNOWN: ReadonlySet<string> = new Set(OPERATIONAL_EVENT_TYPES);

/** Whether `name` is an operational event type this version of the SDK knows. */
export function isOperationalEventType(name: unknown): name is OperationalEventType {
  return typeof name === "string" && KNOWN.has(name);
}

/**
 * Whether a verified webhook body (what `Webhook.verify` returns) is an operational event of a
 * type this SDK knows, with a `timestamp` and a `data` object. It checks the envelope only: the
 * signature already vouches for the rest. A type added to the API after this SDK was released
 * answers `false`, so that a receiver can acknowledge it without reading it as another type.
 */
export function isOperationalEvent(body: unknown): body is OperationalEvent {
  if (typeof body !== "object" || body === null) return false;
  const { type, timestamp, data } = body as Record<string, unknown>;
  return (
    isOperationalEventType(type) &&
    typeof timestamp === "number" &&
    typeof data === "object" &&
    data !== null
  );
}
