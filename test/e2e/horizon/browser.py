"""A headless Chromium driven by Selenium (Debian's chromium, chromium-driver, python3-selenium),
taking one JSON command a line on stdin and answering one JSON line on stdout, so that the
vitest test (horizon.test.ts) drives the page step by step and asserts on what it shows.

Commands: {"op": "open", "url"} | {"op": "fill", "xpath", "value"} | {"op": "click", "xpath"}
| {"op": "wait_text", "text", "timeout"?} | {"op": "wait_xpath", "xpath", "timeout"?}
| {"op": "text"} | {"op": "shot", "path"} | {"op": "url"} | {"op": "errors"} | {"op": "quit"}.
Each answer is {"ok": true, ...} or {"ok": false, "error": "..."}; every wait is bounded.

On stdin's end, "quit" or SIGTERM it quits Chromium and chromedriver (they must not outlive
it: the first answer names their pids, for the test's leak check).

usage: /usr/bin/python3 browser.py PROFILE_DIR
"""
import json
import signal
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

opts = webdriver.ChromeOptions()
for a in (
    '--headless=new',
    '--no-sandbox',  # root, in a test: Chromium's own sandbox needs a user namespace per renderer
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--window-size=1400,1000',
    '--no-first-run',
    '--disable-extensions',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-default-apps',
    '--no-proxy-server',
    '--lang=en-US',
    '--user-data-dir=%s' % sys.argv[1],
):
    opts.add_argument(a)
opts.set_capability('goog:loggingPrefs', {'browser': 'SEVERE'})
driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
driver.set_page_load_timeout(30)


def body_text():
    return driver.execute_script('return document.body ? document.body.innerText : ""')


def until(what, timeout, describe):
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            r = what()
            if r:
                return r
        except WebDriverException as e:  # stale element, not yet clickable: try again
            last = e
        if time.monotonic() > end:
            raise TimeoutError('%s within %ss%s' % (describe, timeout, ' (%s)' % last.msg if last else ''))
        time.sleep(0.1)


def visible(xpath):
    for e in driver.find_elements(By.XPATH, xpath):
        if e.is_displayed() and e.is_enabled():
            return e
    return None


def click(xpath, timeout):
    def attempt():
        e = visible(xpath)
        if not e:
            return False
        e.click()
        return True

    until(attempt, timeout, 'no clickable %s' % xpath)


def fill(xpath, value, timeout):
    e = until(lambda: visible(xpath), timeout, 'no field %s' % xpath)
    e.clear()
    e.send_keys(value)


def handle(cmd):
    op = cmd['op']
    t = float(cmd.get('timeout', 20))
    if op == 'open':
        driver.get(cmd['url'])
        return {}
    if op == 'fill':
        fill(cmd['xpath'], cmd['value'], t)
        return {}
    if op == 'click':
        click(cmd['xpath'], t)
        return {}
    if op == 'wait_text':
        until(lambda: cmd['text'] in body_text(), t, 'no "%s" on the page' % cmd['text'])
        return {'text': body_text()}
    if op == 'wait_xpath':
        until(lambda: visible(cmd['xpath']), t, 'nothing visible at %s' % cmd['xpath'])
        return {'text': body_text()}
    if op == 'text':
        return {'text': body_text(), 'url': driver.current_url}
    if op == 'url':
        return {'url': driver.current_url}
    if op == 'shot':
        driver.save_screenshot(cmd['path'])
        return {'path': cmd['path']}
    if op == 'errors':
        return {'errors': [m['message'] for m in driver.get_log('browser')]}
    raise ValueError('unknown op %s' % op)


def on_term(*_):
    raise SystemExit(0)


signal.signal(signal.SIGTERM, on_term)
print(json.dumps({'ok': True, 'ready': True, 'pids': [driver.service.process.pid]}), flush=True)
try:
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd['op'] == 'quit':
            break
        try:
            out = {'ok': True, **handle(cmd)}
        except Exception as e:  # the test reports it, with a screenshot
            out = {'ok': False, 'error': '%s: %s' % (type(e).__name__, getattr(e, 'msg', None) or e)}
        print(json.dumps(out), flush=True)
finally:
    driver.quit()
