// Types of @hyperrec/client, following docs/openapi.yaml.

/** An id: a string of 1 to 128 bytes, or a non-negative integer. */
export type Id = string | number;

export interface Context {
  tz?: string;
  location?: string;
  mood?: string;
  device?: string;
}

export type FilterValue = string | number;

export interface RecommendRequest {
  user_id?: Id;
  session_id?: Id;
  /** newest first, at most 200 */
  history?: Id[];
  /** 1 to 100, default 10 */
  k?: number;
  context?: Context & { ts?: number; extra?: Record<string, string> };
  exclude?: Id[];
  explain?: boolean;
  filters?: Record<string, FilterValue | FilterValue[]>;
  user_attrs?: Record<string, string | number>;
}

export interface RecommendedItem {
  item_id: string;
  score: number;
  explain?: {
    history?: { item_id: string; similarity: number }[];
    context?: { feature: string; value: string; effect: number }[];
  };
}

export interface RecommendResponse {
  recommendation_id: string;
  user_id: string | null;
  items: RecommendedItem[];
  model: { name: string; version: number };
  variant: { experiment: string; name: string } | null;
  context: {
    ts: number;
    tz: string;
    hour: number;
    /** 0 = Monday */
    weekday: number;
    weekend: boolean;
    location: string | null;
    mood: string | null;
    device: string | null;
  };
  context_source: Record<string, "request" | "redis" | "now" | "default" | "none">;
  history_used: number;
  degraded: boolean;
  retrieval: "ann" | "exact" | "popularity" | "context_popularity" | "trending";
  filter_matches?: number;
}

export interface PopularRequest {
  /** 1 to 100, default 10 */
  k?: number;
  context?: Context & { ts?: number; extra?: Record<string, string> };
  exclude?: Id[];
  filters?: Record<string, FilterValue | FilterValue[]>;
  user_attrs?: Record<string, string | number>;
  /** rank by recent events (not with context or user_attrs) */
  trending?: boolean;
}

export interface SimilarRequest {
  item_id: Id;
  /** personal: the user's history is left out and their taste counts */
  user_id?: Id;
  /** 1 to 100, default 10 */
  k?: number;
  exclude?: Id[];
  filters?: Record<string, FilterValue | FilterValue[]>;
}

export interface SimilarResponse {
  recommendation_id: string;
  item_id: string;
  user_id: string | null;
  items: { item_id: string; score: number }[];
  model: { name: string; version: number };
  /** present with a user_id */
  history_used?: number;
  degraded: boolean;
  retrieval: "ann" | "exact" | "popularity" | "context_popularity" | "trending";
  filter_matches?: number;
}

export interface Event {
  user_id: Id;
  type: "view" | "click" | "purchase" | "rating" | "context";
  item_id?: Id;
  value?: number;
  ts?: number;
  context?: Context;
  recommendation_id?: string;
  event_id?: string;
}

export type DropReason = "queue_full" | "retries_exhausted" | "rejected";

export interface ClientOptions {
  /** the service, e.g. "https://rec.example.com" */
  baseUrl: string;
  /** an API key (servers), sent as Authorization: Bearer */
  apiKey?: string;
  /** a user token (browsers), or a function that returns the current one */
  token?: string | (() => string | Promise<string>);
  /** events per POST /event, default 20 (at most 100) */
  batchSize?: number;
  /** how long a partial batch waits, default 1000 ms */
  flushIntervalMs?: number;
  /** events held while the service cannot take them, default 1000 */
  maxQueue?: number;
  /** attempts of one batch before its events are dropped, default 8 */
  maxRetries?: number;
  /** first retry delay (doubling, with jitter), default 250 ms */
  backoffMs?: number;
  /** longest wait between attempts, default 30000 ms */
  maxBackoffMs?: number;
  /** one request's timeout, default 5000 ms */
  timeoutMs?: number;
  /** items whose list's recommendation_id is remembered, default 1000 */
  rememberLists?: number;
  /** called with the events the client had to drop, and why */
  onDrop?: (events: Event[], reason: DropReason, error?: HyperrecError) => void;
  /** the fetch to use, default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface ClientStats {
  queued: number;
  sent: number;
  duplicates: number;
  dropped: number;
  rejected: number;
  retries: number;
  pending: number;
}

export class HyperrecError extends Error {
  status: number;
  code: string | null;
  field: string | null;
  retryAfterMs: number | null;
}

export class HyperrecClient {
  constructor(options: ClientOptions);
  recommend(req: RecommendRequest): Promise<RecommendResponse>;
  similar(req: SimilarRequest): Promise<SimilarResponse>;
  popular(req?: PopularRequest): Promise<RecommendResponse>;
  track(event: Event): Event | null;
  flush(): Promise<void>;
  stats(): ClientStats;
  flushOnExit(): number;
  installPageHide(target?: Window | typeof globalThis): () => void;
}

export default HyperrecClient;
