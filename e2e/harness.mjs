// The harness every test file uses: it runs the real server binary named by
// PULSE_BIN on a free port with a fresh SQLite file, waits until it is ready,
// and stops it when the file's tests end. It builds nothing: `make e2e`
// builds the binary first (for a run by hand: go build -o /tmp/pulse ./server).
//
// It also has a small GraphQL-over-fetch client for the actions that cause
// notifications (register, post, comment, react, follow), and `within`, the
// one way the tests wait for anything: a promise that fails with a message
// saying what did not happen when it does not happen in time.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

// How long the server may take to start and become ready, and to stop after
// SIGTERM before it is killed.
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

// The default wait for one event in a test: generous for a loaded CI
// machine, far below the runner's patience.
export const EVENT_TIMEOUT_MS = 10_000;

export const PASSWORD = 'correct horse battery';

// A token no server issued, for the tests of a bad token; the server must not
// log it either.
export const BAD_TOKEN = 'not-a-real-token-' + Math.random().toString(36).slice(2);

/**
 * within resolves as promise does, or rejects with "timed out after N ms
 * waiting for <what>" if it has not settled in time; what may be a function
 * that returns the text, called only then.
 */
export function within(promise, what, ms = EVENT_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Inbox collects values pushed by a callback (a socket's frames, a
 * subscription's results) so that a test can wait for the first one that
 * matches, whether it arrived already or arrives later.
 */
export class Inbox {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
    this.failure = null;
  }

  push = (item) => {
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (w.match(item)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(item);
      }
    }
  };

  // fail makes every current and later wait reject with err (the
  // subscription or socket ended with an error).
  fail = (err) => {
    this.failure = err instanceof Error ? err : new Error(`${this.name} failed: ${describe(err)}`);
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  };

  /** next resolves with the first item (already received or not) that matches. */
  next(match = () => true, what = 'a message', ms = EVENT_TIMEOUT_MS) {
    const found = this.items.find(match);
    if (found !== undefined) return Promise.resolve(found);
    if (this.failure) return Promise.reject(this.failure);
    const p = new Promise((resolve, reject) => this.waiters.push({ match, resolve, reject }));
    return within(p, `${what} on ${this.name} (got so far: ${describe(this.items)})`, ms).catch((err) => {
      this.waiters = this.waiters.filter((w) => w.match !== match);
      throw err;
    });
  }

  /** count resolves when n items have arrived, with the first n. */
  async count(n, what = `${n} messages`, ms = EVENT_TIMEOUT_MS) {
    let seen = 0;
    await this.next(() => ++seen >= n, what, ms);
    return this.items.slice(0, n);
  }
}

export function describe(v) {
  if (v instanceof Error) return v.message;
  if (v && typeof v === 'object' && 'code' in v && 'reason' in v) return `close ${v.code} ${JSON.stringify(v.reason)}`;
  try {
    const s = JSON.stringify(v);
    return s.length > 2000 ? s.slice(0, 2000) + '...' : s;
  } catch {
    return String(v);
  }
}

/**
 * startServer starts PULSE_BIN with --addr 127.0.0.1:0 and a fresh database
 * (plus extraArgs), reads its address from the "msg=listening addr=..." log
 * line and waits for /readyz. It returns the server's URLs, a GraphQL client
 * and stop(), which sends SIGTERM, kills it after STOP_TIMEOUT_MS and fails
 * unless it exited with status 0 by itself.
 */
export async function startServer({ extraArgs = [], addr: listenAddr = '127.0.0.1:0', dir: keptDir } = {}) {
  const bin = process.env.PULSE_BIN;
  if (!bin) {
    throw new Error('PULSE_BIN is not set: build the server (go build -o /tmp/pulse ./server) and run PULSE_BIN=/tmp/pulse node --test');
  }
  if (!existsSync(bin)) throw new Error(`PULSE_BIN=${bin}: no such file`);
  // A dir of the caller's (to restart a server on its SQLite file) is kept.
  const dir = keptDir ?? (await mkdtemp(path.join(tmpdir(), 'pulse-e2e-')));
  const removeDir = () => (keptDir ? Promise.resolve() : rm(dir, { recursive: true, force: true }));
  const args = ['--addr', listenAddr, '--db', path.join(dir, 'pulse.db'), ...extraArgs];
  const child = spawn(path.resolve(bin), args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
  // If this test process dies without stopping it, the server dies too.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const spawned = new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`cannot start ${bin}: ${err.message}`)));
    child.on('spawn', resolve);
  });
  const listening = new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /msg=listening addr=(\S+)/.exec(log);
      if (m) resolve(m[1]);
    });
    exited.then(({ code, signal }) => reject(new Error(`the server exited (code ${code}, signal ${signal}) before listening:\n${log}`)));
  });

  let addr;
  try {
    await spawned;
    addr = await within(listening, `the server's "msg=listening addr=..." log line (log so far:\n${log})`, START_TIMEOUT_MS);
  } catch (err) {
    child.kill('SIGKILL');
    await removeDir();
    throw err;
  }

  const httpURL = `http://${addr}`;
  const server = {
    addr,
    httpURL, // http://127.0.0.1:PORT
    wsURL: `ws://${addr}`, // ws://127.0.0.1:PORT
    queryURL: `${httpURL}/query`,
    wsQueryURL: `ws://${addr}/query`,
    /** plainSocketURL is /ws/<token>/ on this server, with ?after= if given. */
    plainSocketURL: (token, afterId) => `ws://${addr}/ws/${encodeURIComponent(token)}/` + (afterId != null ? `?after=${afterId}` : ''),
    log: () => log,
    // The access tokens the tests used: stop() checks that none of them is
    // in the server's log (docs/api.md: tokens never appear in logs).
    tokens: new Set([BAD_TOKEN]),
    gql: (query, variables, token) => gql(`${httpURL}/query`, query, variables, token),
    /** kill kills the server with SIGKILL, as a crash would, and waits for it; stop then only cleans up. */
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
      process.off('exit', killOnExit);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer;
      const killed = new Promise((resolve) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve('killed');
        }, STOP_TIMEOUT_MS);
      });
      const how = await Promise.race([exited, killed]);
      clearTimeout(timer);
      process.off('exit', killOnExit);
      await removeDir();
      if (how === 'killed') {
        throw new Error(`the server did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM and was killed; its log:\n${log}`);
      }
      if (how.code !== 0) {
        throw new Error(`the server exited with code ${how.code} (signal ${how.signal}) on SIGTERM; its log:\n${log}`);
      }
      const leaked = [...server.tokens].filter((token) => log.includes(token));
      if (leaked.length) {
        throw new Error(`the server's log has ${leaked.length} access token(s) in it, e.g. ${leaked[0]}; its log:\n${log}`);
      }
    },
  };

  try {
    await within(waitReady(httpURL), `${httpURL}/readyz to answer 200`, START_TIMEOUT_MS);
  } catch (err) {
    await server.stop().catch(() => {});
    throw err;
  }
  return server;
}

async function waitReady(httpURL) {
  for (;;) {
    try {
      const res = await fetch(`${httpURL}/readyz`);
      await res.text();
      if (res.ok) return;
    } catch {
      // not accepting yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * useServer starts a server before the file's tests and stops it after
 * them; it returns an object whose fields are filled in by then.
 */
export function useServer(options) {
  const handle = {};
  before(async () => {
    Object.assign(handle, await startServer(typeof options === 'function' ? await options() : options));
  });
  after(async () => {
    if (handle.stop) await handle.stop();
  });
  return handle;
}

/** gql runs one GraphQL operation over HTTP POST and returns data, or throws the errors. */
export async function gql(url, query, variables = {}, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await within(
    fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) }),
    `an answer to ${query.trim().split('\n')[0]}`,
  );
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${res.status}, not JSON: ${text.slice(0, 500)}`);
  }
  if (body.errors?.length) {
    const err = new Error(`HTTP ${res.status}: ${body.errors.map((e) => `${e.message} (${e.extensions?.code})`).join('; ')}`);
    err.errors = body.errors;
    err.status = res.status;
    throw err;
  }
  return body.data;
}

// The actions, each as one user (a server from startServer or useServer).

let userSeq = 0;

/** register makes a new user whose name starts with prefix; returns { token, id, username }. */
export async function register(server, prefix = 'user') {
  const username = `${prefix}${++userSeq}_${process.pid % 10000}`;
  const d = await server.gql(
    'mutation ($u: String!, $p: String!) { register(username: $u, password: $p) { accessToken user { id username } } }',
    { u: username, p: PASSWORD },
  );
  server.tokens?.add(d.register.accessToken);
  return { token: d.register.accessToken, id: d.register.user.id, username: d.register.user.username };
}

export async function createPost(server, user, body = 'Hello, world') {
  const d = await server.gql('mutation ($b: String!) { createPost(body: $b) { id } }', { b: body }, user.token);
  return d.createPost.id;
}

export async function createComment(server, user, postId, body = 'Nice post') {
  const d = await server.gql(
    'mutation ($p: ID!, $b: String!) { createComment(postId: $p, body: $b) { id } }',
    { p: postId, b: body },
    user.token,
  );
  return d.createComment.id;
}

export async function reactToPost(server, user, postId, kind = 'LAUGH') {
  const d = await server.gql(
    'mutation ($p: ID!, $k: ReactionKind!) { reactToPost(postId: $p, kind: $k) { id } }',
    { p: postId, k: kind },
    user.token,
  );
  return d.reactToPost.id;
}

/** removeReactionFromPost takes the user's reaction to the post back; returns the mutation's answer. */
export async function removeReactionFromPost(server, user, postId) {
  const d = await server.gql('mutation ($p: ID!) { removeReactionFromPost(postId: $p) }', { p: postId }, user.token);
  return d.removeReactionFromPost;
}

export async function reactToComment(server, user, commentId, kind = 'LAUGH') {
  const d = await server.gql(
    'mutation ($c: ID!, $k: ReactionKind!) { reactToComment(commentId: $c, kind: $k) { id } }',
    { c: commentId, k: kind },
    user.token,
  );
  return d.reactToComment.id;
}

export async function follow(server, user, username) {
  const d = await server.gql('mutation ($u: String!) { follow(username: $u) { username followerCount } }', { u: username }, user.token);
  return d.follow;
}

/** notificationIds returns the ids of the user's stored notifications, newest first. */
export async function notificationIds(server, user) {
  const d = await server.gql('{ notifications(first: 100) { edges { node { id } } } }', {}, user.token);
  return d.notifications.edges.map((e) => e.node.id);
}

/**
 * runSnippet runs e2e/snippets/NAME as a program (node NAME ...args) until
 * the test ends, and returns an Inbox of its output lines; stderr's chunks
 * come as lines that start with "stderr:", and an exit fails the Inbox.
 */
export function runSnippet(t, name, args) {
  const program = fileURLToPath(new URL(`snippets/${name}`, import.meta.url));
  const child = spawn(process.execPath, [program, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.after(async () => {
    child.kill();
    await within(exited, 'the snippet program to exit');
  });
  const lines = new Inbox("the program's output");
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    out += chunk;
    const parts = out.split('\n');
    out = parts.pop();
    parts.forEach(lines.push);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => lines.push(`stderr: ${chunk}`));
  exited.then((code) => lines.fail(new Error(`the program exited with ${code}`)));
  return lines;
}
