// The API's request and response objects, field for field, named as the OpenAPI document names
// them. They come from the generated `openapi.ts`, so they cannot drift from the server.
import type { components, operations } from "./openapi.js";
import type { OperationalEventType } from "./operational.js";

type Schemas = components["schemas"];

/** Body of `application.create` and `application.update`. */
export type ApplicationIn = Schemas["ApplicationIn"];
/** Body of `application.patch`: a JSON Merge Patch, `null` removes the uid. */
export type ApplicationPatch = Schemas["ApplicationPatch"];
/** An application. */
export type ApplicationOut = Schemas["ApplicationOut"];
/** Body of `endpoint.create`. */
export type EndpointIn = Schemas["EndpointIn"];
/** Body of `endpoint.update`: `url` is required, fields left out keep their value. */
export type EndpointUpdate = Schemas["EndpointUpdate"];
/** Body of `endpoint.patch`: a JSON Merge Patch; headers merge key by key, `null` clears. */
export type EndpointPatch = Schemas["EndpointPatch"];
/** An endpoint. */
export type EndpointOut = Schemas["EndpointOut"];
/**
 * Body of `operationalWebhookEndpoint.create`: an endpoint's body, with a filter of operational
 * event types and no channels (operational events have none).
 */
export type OperationalWebhookEndpointIn = Omit<EndpointIn, "eventTypes" | "channels"> & {
  /** Only these operational events; empty or left out for all of them. */
  eventTypes?: readonly OperationalEventType[] | null;
};
/**
 * Body of `operationalWebhookEndpoint.update`: `url` is required, fields left out keep their
 * value.
 */
export type OperationalWebhookEndpointUpdate = Omit<EndpointUpdate, "eventTypes" | "channels"> & {
  /** New filter of operational events; empty for all of them. */
  eventTypes?: readonly OperationalEventType[] | null;
};
/** Body of `operationalWebhookEndpoint.patch`: a JSON Merge Patch, as `EndpointPatch`. */
export type OperationalWebhookEndpointPatch = Omit<EndpointPatch, "eventTypes" | "channels"> & {
  /** New filter of operational events (replaces the list); `null` or `[]` for all of them. */
  eventTypes?: readonly OperationalEventType[] | null;
};
/** The current signing secret of an endpoint. */
export type EndpointSecretOut = Schemas["SecretOut"];
/** Body of `endpoint.rotateSecret`: the new secret, generated when absent. */
export type EndpointSecretRotateIn = Schemas["RotateIn"];
/** Body of `endpoint.setClientCertificate`: the PEM chain (the client's first) and its key. */
export type ClientCertificateIn = Schemas["ClientCertificateIn"];
/** An endpoint's client certificate for mutual TLS: the PEM chain and its SHA-256 fingerprint. */
export type ClientCertificateOut = Schemas["ClientCertificateOut"];
/** Body of `endpoint.sendExample`: the event type whose example is sent. */
export type SendExampleIn = Schemas["SendExampleIn"];
/**
 * Body of `endpoint.recover` and `endpoint.replayMissing`: a window of message creation times,
 * `since` included, `until` (default now) excluded; each a `Date`, epoch ms or RFC 3339 string.
 */
export type RecoverIn = Omit<Schemas["RecoverIn"], "since" | "until"> & {
  /** Messages created at or after this time. */
  since: TimeFilter;
  /** ...and before this time (a later time than now means now); now when left out. */
  until?: TimeFilter | null;
};
/** The window of `endpoint.stats`: 7 days ago until now when left out, rounded out to hours. */
export interface EndpointStatsWindow {
  /** Attempts made at or after this time (rounded down to the hour). */
  since?: TimeFilter;
  /** ...and before this time (rounded up to the hour). */
  until?: TimeFilter;
}
/** An endpoint's attempts in a window of whole hours, and the deliveries that wait now. */
export type EndpointStatsOut = Schemas["EndpointStatsOut"];
/** A background task (recover, replay-missing) and how far it got. */
export type BackgroundTaskOut = Schemas["BackgroundTaskOut"];
/** What a background task does: `endpoint.recover` or `endpoint.replay`. */
export type BackgroundTaskKind = Schemas["TaskKind"];
/** `running`, then `finished` or `failed` (with the reason in `failure`). */
export type BackgroundTaskStatus = Schemas["TaskStatus"];
/** Body of `eventType.create`. */
export type EventTypeIn = Schemas["EventTypeIn"];
/** Body of `eventType.update`: fields left out keep their value, `null` clears an optional one. */
export type EventTypeUpdate = Schemas["EventTypeUpdate"];
/** Body of `eventType.patch`: a JSON Merge Patch; schemas merge by version, `null` clears. */
export type EventTypePatch = Schemas["EventTypePatch"];
/** An event type. */
export type EventTypeOut = Schemas["EventTypeOut"];
/** Body of `eventType.importOpenApi`: the OpenAPI 3.1 document as `spec` or `specRaw`. */
export type EventTypeImportOpenApiIn = Schemas["ImportOpenApiIn"];
/** What `eventType.importOpenApi` created or updated. */
export type EventTypeImportOpenApiOut = Schemas["ImportOpenApiOut"];
/** `off` (schemas document only) or `enforce` (payloads must match the latest schema). */
export type SchemaValidation = Schemas["SchemaValidation"];
/** Where a payload breaks its event type's enforced schema (`ApiError.errors`). */
export type SchemaViolation = Schemas["SchemaViolationOut"];
/**
 * Body of `message.create`; `deliverAt` also takes a `Date`, and `payloadRetentionPeriod` (days,
 * 1 to 3650) has the payload expunged that long after sending.
 */
export type MessageIn = Omit<Schemas["MessageIn"], "deliverAt"> & {
  /** Deliver at this time instead of now (at most 90 days ahead; a past time means now). */
  deliverAt?: TimeFilter | null;
};
/**
 * A message; `payload` is the JSON exactly as it was sent, or `{}` once `expunged` (by
 * `message.expungeContent` or the server's retention), after which it cannot be resent.
 */
export type MessageOut = Schemas["MessageOut"];
/** One delivery attempt. */
export type MessageAttemptOut = Schemas["AttemptOut"];
/** How one attempt ended. */
export type MessageAttemptStatus = Schemas["AttemptStatus"];
/** What made an attempt: the schedule or a resend. */
export type MessageAttemptTriggerType = Schemas["TriggerType"];
/** Where the delivery of a message to one endpoint stands. */
export type MessageDestinationOut = Schemas["DestinationOut"];
/** `pending`, `success` or `failed`. */
export type MessageDestinationStatus = Schemas["DestinationStatus"];
/** The answer of `messageAttempt.resend`. */
export type ResendOut = Schemas["ResendOut"];
/** Body of `environment.create`. */
export type EnvironmentIn = Schemas["EnvironmentIn"];
/** An environment; `apiKey` is present only in the creation answer. */
export type EnvironmentOut = Schemas["EnvironmentOut"];
/** A new or revoked API key; `apiKey` only in the creation answer. */
export type ApiKeyOut = Schemas["ApiKeyOut"];
/** An API key as listed: a prefix of it, never the key. */
export type ApiKeyInfoOut = Schemas["ApiKeyInfoOut"];
/** Body of `portalAccess.create`: the link's lifetime in seconds and whether it is read-only. */
export type PortalAccessIn = Schemas["PortalAccessIn"];
/** A consumer portal link (`url`) and its token. */
export type PortalAccessOut = Schemas["PortalAccessOut"];
/** The RFC 9457 problem document of every error answer. */
export type Problem = Schemas["Problem"];
/** The stable machine-readable error codes (`code` of a problem document). */
export type ProblemCode = Schemas["ProblemCode"];

type MessageQuery = NonNullable<operations["list_messages"]["parameters"]["query"]>;
type ApplicationQuery = NonNullable<operations["list_applications"]["parameters"]["query"]>;
type BackgroundTaskQuery = NonNullable<operations["list_tasks"]["parameters"]["query"]>;

/** Filters of `application.list`, beside `limit` and `iterator`. */
export type ApplicationFilters = Omit<ApplicationQuery, "limit" | "iterator">;

/** A time the API takes as a filter: a `Date`, epoch milliseconds, or an RFC 3339 string. */
export type TimeFilter = Date | number | string;

/** Filters of `message.list`, beside `limit` and `iterator`. */
export type MessageFilters = Omit<
  MessageQuery,
  "limit" | "iterator" | "before" | "after" | "eventType" | "withContent"
> & {
  /** Only messages of this event type, or of any of these (at most 20). */
  eventType?: string | readonly string[];
  /** `false` leaves the payloads out (each reads `{}`): a cheap list of what was sent. */
  withContent?: boolean;
  /** Only messages created before this time. */
  before?: TimeFilter;
  /** Only messages created after this time. */
  after?: TimeFilter;
};

/** Filters of `backgroundTask.list`, beside `limit` and `iterator`. */
export type BackgroundTaskFilters = Omit<BackgroundTaskQuery, "limit" | "iterator" | "status"> & {
  /** Only tasks in this state. */
  status?: BackgroundTaskStatus;
};
