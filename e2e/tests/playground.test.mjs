// The GraphiQL playground at / in Chromium, used as a person would: the
// Authorization header typed into the Headers tab, the subscription typed
// into the editor and run with the run button, another user reacting over
// HTTP, and the notification showing in the result pane. A screenshot is
// saved in e2e/screenshots/.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { createPost, reactToPost, register, useServer, within } from '../harness.mjs';
import { launch, noChromium } from '../browser.mjs';

const screenshots = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'screenshots');
const server = useServer();

const SUBSCRIPTION = 'subscription { notifications { message } }';

/**
 * replaceEditorText selects all in a CodeMirror editor and pastes text, as a
 * person would, then goes back to the start (so that a screenshot shows the
 * start of a long line).
 */
async function replaceEditorText(page, editor, text) {
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
  await page.keyboard.press('ControlOrMeta+Home');
}

/** editorValue reads a CodeMirror 5 editor's whole text. */
function editorValue(editor) {
  return editor.evaluate((el) => el.CodeMirror.getValue());
}

test('a subscription run in the playground shows a reaction made over HTTP', { skip: noChromium }, async (t) => {
  const john = await register(server, 'John');
  const oliver = await register(server, 'Oliver');
  const post = await createPost(server, oliver, 'Hello from the playground');

  const browser = await launch();
  t.after(() => browser.close());
  const { page } = browser;
  await mkdir(screenshots, { recursive: true });
  try {
    // The page's websocket frames, to know when the subscription went out.
    const frames = [];
    const subscribeSent = new Promise((resolve) => {
      page.on('websocket', (ws) => {
        ws.on('framesent', (f) => {
          frames.push(`sent ${f.payload}`);
          if (JSON.parse(f.payload).type === 'subscribe') resolve();
        });
        ws.on('framereceived', (f) => frames.push(`received ${f.payload}`));
        ws.on('close', () => frames.push('closed'));
      });
    });

    await page.goto(`${server.httpURL}/`);
    const queryEditor = page.locator('.graphiql-query-editor .CodeMirror');
    await queryEditor.waitFor();

    // The Authorization header, in the Headers tab.
    await page.getByRole('button', { name: 'Headers', exact: true }).click();
    const headersEditor = page.locator('section.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
    await replaceEditorText(page, headersEditor, JSON.stringify({ Authorization: `Bearer ${oliver.token}` }));
    assert.deepEqual(JSON.parse(await editorValue(headersEditor)), { Authorization: `Bearer ${oliver.token}` });

    // The subscription, run with the run button.
    await replaceEditorText(page, queryEditor, SUBSCRIPTION);
    assert.equal(await editorValue(queryEditor), SUBSCRIPTION);
    // GraphiQL parses the editor's text after a short delay; until then the
    // run button still opens the menu of the default text's several
    // operations instead of running.
    const run = page.locator('button.graphiql-execute-button:not([aria-haspopup])');
    await run.waitFor();
    await run.click();

    // The server starts the subscription as soon as it reads the subscribe
    // message. The protocol has no message that says it has, so the frame
    // on the wire is as close as a client can get; the reaction below takes
    // an HTTP round trip and a database transaction on top of that. (The
    // other tests pass `after` instead, which leaves no window at all; this
    // one runs the subscription exactly as the README tells a person to.)
    await within(subscribeSent, () => `the playground to send the subscription (frames: ${JSON.stringify(frames)})`);
    const message = `${john.username} reacted to your post`;
    await reactToPost(server, john, post, 'LOVE');

    const result = page.locator('section.result-window');
    try {
      await result.getByText(message).waitFor({ timeout: 10_000 });
    } catch (err) {
      throw new Error(`the result pane did not show "${message}" within 10 s; it shows ${JSON.stringify(await result.innerText())}; frames: ${JSON.stringify(frames)}`, { cause: err });
    }
    const shown = JSON.parse(await editorValue(page.locator('section.result-window .CodeMirror')));
    assert.deepEqual(shown, { data: { notifications: { message } } });
    // A running subscription shows the stop button.
    await page.getByRole('button', { name: /^Stop/ }).waitFor();

    const file = path.join(screenshots, 'playground-subscription.png');
    await page.screenshot({ path: file });
    t.diagnostic(`screenshot: ${file}`);

    assert.deepEqual(browser.errors, [], 'the page logged errors');
  } catch (err) {
    // A screenshot of what the page showed when it failed.
    const file = path.join(screenshots, 'playground-failure.png');
    await page.screenshot({ path: file }).then(
      () => t.diagnostic(`screenshot of the failure: ${file}`),
      (e) => t.diagnostic(`no screenshot of the failure: ${e.message}`),
    );
    throw err;
  }
});
