import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { ApiClient, ApiError } from './api.js';
import { FleetView } from './fleet.js';
import { useRoute } from './hooks.js';
import { LiveEvents, type LiveState } from './live.js';
import { TenantView } from './tenant.js';

const TOKEN_KEY = 'tenantd.dashboard.token';

function readToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** What a failed sign-in or a revoked token says, in the API's own terms (code and detail). */
export function describeAuthError(err: unknown): string {
  if (err instanceof ApiError) {
    const p = err.problem;
    if (p.status === 401) return `The API rejected this token (${p.code}${p.detail ? `: ${p.detail}` : ''}).`;
    if (p.status === 403) return `This token may not read tenants (${p.code}${p.detail ? `: ${p.detail}` : ''}).`;
    return `The API answered ${p.status || 'nothing'}: ${p.title}${p.detail ? ` — ${p.detail}` : ''}`;
  }
  return `Sign-in failed: ${err instanceof Error ? err.message : String(err)}`;
}

export interface ViewProps {
  api: ApiClient;
  live: LiveEvents;
  /** A call failed because the token is no longer accepted: back to the sign-in form. */
  onAuthError: (err: ApiError) => void;
}

export function App(): JSX.Element {
  const [token, setToken] = useState<string | null>(readToken);
  const [authError, setAuthError] = useState<string | null>(null);
  const [liveState, setLiveState] = useState<LiveState>('connecting');
  const route = useRoute();
  const api = useMemo(() => (token ? new ApiClient(token) : null), [token]);

  const signOut = useCallback((message: string | null) => {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      /* storage unavailable: nothing kept */
    }
    setToken(null);
    setAuthError(message);
  }, []);

  const live = useMemo(
    () =>
      token
        ? new LiveEvents(token, {
            onState: (s) => {
              setLiveState(s);
              if (s === 'unauthorized') signOut('The event stream no longer accepts this token; sign in again.');
            },
          })
        : null,
    [token, signOut],
  );
  useEffect(() => {
    if (!live) return;
    live.start();
    return () => live.stop();
  }, [live]);

  const onAuthError = useCallback((err: ApiError) => signOut(describeAuthError(err)), [signOut]);

  if (!api || !live) {
    return (
      <SignIn
        error={authError}
        onSignedIn={(t) => {
          try {
            sessionStorage.setItem(TOKEN_KEY, t);
          } catch {
            /* still usable for this page */
          }
          setAuthError(null);
          setToken(t);
        }}
      />
    );
  }
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/">
          tenantd
        </a>
        <nav>
          <a href="#/" class={route.view === 'fleet' ? 'active' : ''}>
            Fleet
          </a>
        </nav>
        <span class={`live live-${liveState}`} data-testid="live-state" title="Event stream">
          {liveState === 'open' ? 'live' : liveState === 'connecting' ? 'connecting…' : 'offline'}
        </span>
        <button type="button" class="link" onClick={() => signOut(null)}>
          Sign out
        </button>
      </header>
      {liveState === 'lost' && (
        <div class="banner" role="alert" data-testid="connection-banner">
          Connection lost — reconnecting…
        </div>
      )}
      <main>
        {route.view === 'fleet' ? (
          <FleetView key={`fleet:${route.status ?? ''}:${route.q}`} api={api} live={live} onAuthError={onAuthError} status={route.status} q={route.q} />
        ) : (
          <TenantView key={`tenant:${route.id}`} api={api} live={live} onAuthError={onAuthError} id={route.id} />
        )}
      </main>
    </div>
  );
}

function SignIn({ error, onSignedIn }: { error: string | null; onSignedIn: (token: string) => void }): JSX.Element {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const shown = failure ?? error;
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const token = value.trim();
    if (!token) {
      setFailure('Enter an API token with the tenants:read scope.');
      return;
    }
    setBusy(true);
    setFailure(null);
    try {
      // Proves the token before anything is shown: one authenticated call.
      await new ApiClient(token).list({ limit: 1 });
      onSignedIn(token);
    } catch (err: unknown) {
      setFailure(describeAuthError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form onSubmit={(e) => void submit(e)} aria-labelledby="signin-title">
        <h1 id="signin-title">tenantd</h1>
        <p>Sign in with an API token (scope <code>tenants:read</code>). It is kept for this browser tab only.</p>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        {shown && (
          <p class="error" role="alert" data-testid="signin-error">
            {shown}
          </p>
        )}
      </form>
    </main>
  );
}
