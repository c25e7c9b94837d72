// The `octohooks` package: the API client, its types, and the webhook verifier for receivers.
export { DEFAULT_SERVER_URL, Octohooks, type OctohooksOptions } from "./client.js";
export { ApiError, ConnectionError, WaitTimeoutError } from "./errors.js";
export type {
  AbortSignalLike,
  Fetch,
  FetchInit,
  FetchResponse,
  PostOptions,
  RequestOptions,
} from "./http.js";
export type * from "./models.js";
export {
  type EndpointCreatedEvent,
  type EndpointDeletedEvent,
  type EndpointDisabledEvent,
  type EndpointEnabledEvent,
  type EndpointUpdatedEvent,
  isOperationalEvent,
  isOperationalEventType,
  type MessageAttemptExhaustedEvent,
  type MessageAttemptFailingEvent,
  type MessageAttemptRecoveredEvent,
  OPERATIONAL_EVENT_TYPES,
  type OperationalDisableTrigger,
  type OperationalEndpointData,
  type OperationalEndpointDisabledData,
  type OperationalEvent,
  type OperationalEventOf,
  type OperationalEventType,
  type OperationalLastAttempt,
  type OperationalMessageAttemptData,
} from "./operational.js";
export type { ListOptions, ListResponse } from "./pagination.js";
export type { ApplicationListOptions } from "./resources/application.js";
export type { BackgroundTaskListOptions, WaitForOptions } from "./resources/backgroundTask.js";
export type { MessageListOptions } from "./resources/message.js";
export { Webhook, type WebhookHeaders, WebhookVerificationError } from "./webhook.js";
