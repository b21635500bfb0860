// The SDK's own surface. Every API shape comes from api.gen.d.ts, generated from /openapi.json.
import type { Api, OPERATIONS } from "./api.gen.js";

export * from "./api.gen.js";
export { OPERATIONS };

export declare class RoomlogError extends Error {
  status: number;
  code: string;
  field: string | null;
  error: Record<string, unknown>;
  retryAfter: number | null;
}

export declare class NetworkError extends Error {
  cause: unknown;
}

/** What the client needs of `fetch` (the browser's and Node's both fit). */
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body?: string }) => Promise<{
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

/** What the live connection needs of a WebSocket class (the browser's and Node's both fit). */
export type WebSocketClass = new (url: string) => {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: unknown;
  onmessage: unknown;
  onclose: unknown;
  onerror: unknown;
};

export interface ClientOptions {
  baseUrl?: string;
  apiKey?: string | null;
  userId?: string | null;
  accessToken?: string | null;
  refreshToken?: string | null;
  fetch?: FetchLike;
  WebSocket?: WebSocketClass;
  maxRetries?: number;
  maxRetryAfterSeconds?: number;
  sleep?: (ms: number) => Promise<void>;
  onTokens?: (tokens: { access_token: string; refresh_token?: string }) => void;
}

export interface SendOptions {
  clientMsgId?: string;
  threadId?: string;
  meta?: Record<string, unknown>;
  type?: string;
  attachments?: string[];
  /** User ids the message mentions (each counts in their inbox's `mention_count`). */
  mentions?: string[];
}

export interface RoomEvent {
  type: string;
  room_id: string;
  seq: number;
  actor: string | null;
  created_at: string;
  data: Record<string, unknown>;
}

export type ConnectionState = "connecting" | "syncing" | "live" | "reconnecting" | "resyncing" | "resynced" | "closed";

export interface LiveOptions {
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  backoff?: { baseMs?: number; maxMs?: number };
  onSeq?: (roomId: string, seq: number) => void;
}

export declare class LiveConnection {
  state: ConnectionState;
  on(name: "event", fn: (event: RoomEvent) => void): () => void;
  on(name: "state", fn: (state: ConnectionState, detail: Record<string, unknown>) => void): () => void;
  on(name: "frame", fn: (frame: Record<string, unknown> & { type: string }) => void): () => void;
  on(name: "seq", fn: (roomId: string, seq: number) => void): () => void;
  positions(): Record<string, number>;
  add(rooms: string[] | Record<string, number>): Promise<void>;
  typing(roomId: string, on?: boolean): void;
  read(roomId: string, seq: number): void;
  close(): void;
}

export declare class RoomlogClient {
  constructor(options?: ClientOptions);
  api: Api;
  baseUrl: string;
  userId: string | null;
  authHeaders(): Record<string, string>;
  login(email: string, password: string): Promise<{ access_token: string; refresh_token: string; user: { user_id: string } }>;
  request<T = unknown>(method: string, path: string, options?: {
    query?: Record<string, unknown> | null; body?: unknown; headers?: Record<string, string>; auth?: boolean;
    retryNetwork?: boolean | null;
  }): Promise<T>;
  send(roomId: string, content: string, options?: SendOptions): Promise<{ message_id: string; seq: number; created_at: string; client_msg_id: string }>;
  historyPages(roomId: string, options?: { beforeSeq?: number; limit?: number }): AsyncGenerator<Array<Record<string, unknown>>>;
  events(roomId: string, options?: { afterSeq?: number; limit?: number }): AsyncGenerator<RoomEvent>;
  subscribe(rooms: string[] | Record<string, number>, options?: LiveOptions): LiveConnection;
}

export declare function newClientMsgId(): string;
export declare function retryAfterSeconds(value: string | null | undefined, now?: number): number | null;
export declare function backoffDelay(attempt: number, options?: { baseMs?: number; maxMs?: number; random?: () => number }): number;
