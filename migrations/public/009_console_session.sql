-- The console's sessions (src/access/console-sessions.ts): the cookie carries `<id>.<secret>`;
-- here is the id, the secret's SHA-256, who signed in and when the session was last used. A
-- session ends at sign-out, at `plinth console sessions revoke`, or when idle past its timeout.
CREATE TABLE public.console_session (
  id text PRIMARY KEY,
  secret_hash text NOT NULL,
  operator text NOT NULL,
  client_address text,
  user_agent text,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  ended_why text
);
CREATE INDEX console_session_live ON public.console_session (last_seen_at) WHERE ended_at IS NULL;
REVOKE ALL ON public.console_session FROM PUBLIC;
