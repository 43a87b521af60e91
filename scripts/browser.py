#!/usr/bin/env python3
"""kagi's demo in a real browser: headless Chromium, driven through its
WebDriver (chromedriver) by Python's selenium, types and clicks like a
person through both sites and the operators' console, and checks every
page it reaches:

- axe-core (injected through WebDriver) finds no violation of WCAG 2.0,
  2.1 and 2.2 A and AA; a self-check first proves axe really runs;
- at 360 CSS px wide nothing scrolls sideways;
- at 1280 px no label of a step bar breaks inside a word;
- on the main forms Tab follows the visual order, and Enter in a text
  field submits the form's default action;
- every page is screenshotted at 1280 and 390 px, full height, into
  target/screens/<site>-<screen>-<width>.png, for a person to look at.

It starts `KAGI demo` and chromedriver itself and stops both by PID. On
first use (and whenever tests/browser/ changes) it installs selenium at the
versions of tests/browser/requirements.txt into a virtual environment of
its own (target/tmp/browser-venv) and axe-core from
tests/browser/package-lock.json (target/tmp/browser-node), then runs
again in that environment. Chromium and chromedriver are Debian's
(`apt-get install chromium chromium-driver`; scripts/test installs them).
Prints each page, every problem (page, check, rule, elements), and a
summary; exits 1 if any check failed.

Usage: python3 scripts/browser.py KAGI        (scripts/browser builds KAGI)

Each walk is a function of a site and a language: `walk(kagi, lang)`
starts a fresh demo and calls `kaigo`, `portal`, `console` and
`kaigo_first_login` with that language; WORDS holds what a person reads
to find the way, per language. Another language is one more entry in
WORDS and one more name in LANGUAGES."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "tests" / "browser"
VENV = ROOT / "target" / "tmp" / "browser-venv"
NODE = ROOT / "target" / "tmp" / "browser-node"
SCREENS = ROOT / "target" / "screens"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def install():
    """Makes the virtual environment and the axe-core install, each anew
    when its pinned file no longer matches the copy kept inside it."""
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"browser.py: {tool} is missing: apt-get install chromium chromium-driver")
    wanted = (PINS / "requirements.txt").read_text()
    made_with = VENV / "requirements.txt"
    if not made_with.exists() or made_with.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "--require-virtualenv", "-r", str(PINS / "requirements.txt")], check=True)
        made_with.write_text(wanted)
    lock = (PINS / "package-lock.json").read_text()
    kept = NODE / "package-lock.json"
    if not kept.exists() or kept.read_text() != lock or not (NODE / "node_modules").exists():
        shutil.rmtree(NODE, ignore_errors=True)
        NODE.mkdir(parents=True)
        shutil.copy(PINS / "package.json", NODE / "package.json")
        shutil.copy(PINS / "package-lock.json", NODE / "package-lock.json")
        subprocess.run(["npm", "ci", "--prefix", str(NODE), "--ignore-scripts", "--no-audit",
                        "--no-fund", "--loglevel=error"], check=True)


if __name__ == "__main__" and Path(sys.prefix).resolve() != VENV.resolve():
    install()
    python = str(VENV / "bin" / "python")
    os.execv(python, [python, __file__, *sys.argv[1:]])

# From here on, this runs in the virtual environment.
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402

from kagitest import start, stop  # noqa: E402

LANGUAGES = ["ja", "en"]

# What axe checks: WCAG 2.0, 2.1 and 2.2, levels A and AA; and, apart,
# its two rules on landmarks (best practice, not WCAG tags): every page
# has one main, and nothing is outside a landmark.
AXE_LANDMARKS = ["landmark-one-main", "region"]
AXE_RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
             "rules": {rule: {"enabled": True} for rule in AXE_LANDMARKS}}
WIDE, PHONE, NARROW = 1280, 390, 360
# How long a condition may take to come true on a busy machine before the
# walk gives up (a page to load, a mail to arrive).
PATIENCE = 60
# Chromium as the tests need it: headless, nothing fetched from outside,
# a profile of its own.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# What a person reads to find the way, per language: page titles (the
# part of <title> before " | "), the errors a mistaken form must show
# (each with the field it is about, or None), and what is typed or chosen.
WORDS = {
    "ja": {
        "index": "kagi",
        "kaigo.top": "トップメニュー",
        "kaigo.login": "ログイン",
        "kaigo.security_code": "セキュリティコード入力",
        "kaigo.security_code_wrong": [("#code", "セキュリティコードが正しくありません。")],
        "kaigo.menu": "メニュー",
        "kaigo.security_code_settings": "セキュリティコード設定",
        "kaigo.recovery": "パスワード等を紛失した方",
        "kaigo.auth": "ログイン情報再設定認証",
        "kaigo.auth_errors": [("#office", "事業所番号は半角数字10桁で入力してください。"),
                              ("#email", "セキュリティ用メールアドレスを正しく入力してください。")],
        "kaigo.prefecture": "請求先都道府県選択",
        "kaigo.otp": "ワンタイムパスワード入力",
        "kaigo.otp_errors": [("#otp", "ワンタイムパスワードは6桁の数字を半角で入力してください。")],
        "kaigo.reset": "ログイン情報再設定",
        "kaigo.reset_errors": [("#pw", "パスワードは8文字～16文字で入力してください。"),
                               ("#pw", "パスワードには数字を少なくとも1文字含めてください。"),
                               ("#pw2", "新しいパスワードと新しいパスワード(確認用)が一致しません。")],
        "kaigo.done": "処理終了",
        "kaigo.postal": "書類郵送申請",
        "kaigo.postal_errors": [("#office", "事業所番号を入力してください。"),
                                ("#prefecture", "請求先都道府県を選択してください。"),
                                ("#office_name", "事業所名を入力してください。"),
                                ("#contact", "担当者名を入力してください。"),
                                ("#phone", "電話番号を入力してください。")],
        "kaigo.postal_done": "書類郵送申請受付",
        "kaigo.first_password": "パスワード変更",
        "kaigo.first_password_errors": [("#pw", "仮パスワードと同じパスワードは使用できません。")],
        "kaigo.first_email": "セキュリティ用メールアドレス登録",
        "kaigo.first_email_errors": [
            ("#email2", "セキュリティ用メールアドレスとセキュリティ用メールアドレス(確認用)が一致しません。")],
        "kaigo.first_code": "ワンタイムパスワード入力",
        "not_found": "ページが見つかりません",
        "hokkaido": "北海道",
        "tokyo": "東京都",
        "office_name": "デモ居宅介護支援 さっぽろ",
        "contact": "札幌 花子",
        "portal.top": "トップページ",
        "portal.login": "ログイン",
        "portal.identify": "パスワードのリセット",
        "portal.captcha_wrong": [
            ("#captcha", "表示されている文字が正しくありません。新しく表示された文字を入力してください。")],
        "portal.verify": "パーソナルデータ検証 - メールアドレス",
        "portal.verify_errors": [("#email", "メールアドレスを正しく入力してください。")],
        "portal.sent": "パスワード変更用URLメール送信完了",
        "portal.new_password": "パスワードのリセット",
        "portal.new_password_errors": [("#pw2", "パスワードとパスワードの再入力が一致しません。")],
        "portal.reset_done": "Password Resetに成功",
        "portal.register": "新規ユーザー登録",
        "portal.register_errors": [
            ("#institution", "医療機関等コードは半角数字10桁(都道府県番号2桁と8桁)で入力してください。"),
            ("#institution_name", "医療機関等名称を入力してください。"),
            ("#email_confirm", "メールアドレスとメールアドレス(確認用)が一致しません。"),
            ("#captcha", "表示されている文字が正しくありません。新しく表示された文字を入力してください。")],
        "portal.register_sent": "確認メール送信",
        "portal.register_password": "パスワード設定",
        "portal.register_done": "登録完了",
        "institution_name": "デモ診療所",
        "person": "田中 花子",
        "console.login": "オペレーターログイン",
        # Not one field's: the login does not say which was wrong.
        "console.login_wrong": [(None, "オペレーター名、パスワード、または確認コードが正しくありません。")],
        "console.search": "アカウント検索",
        "console.account": "アカウント KJ272711111111",
        "console.audit": "監査ログ",
        "console.mail": "メール送信状況",
        "console.postal": "書類郵送の申請",
        "console.postal_request": "書類郵送の申請 KJ010111111111",
        "console.letter": "ログイン情報のお知らせ(印刷用)",
        "console.not_found": "ページが見つかりません",
        "memo": "電話で確認済み",
    },
}

# The sites in English; the console speaks Japanese only, so its titles
# and its errors are the Japanese ones.
WORDS["en"] = {
    **{k: v for k, v in WORDS["ja"].items() if k.startswith("console.") or k == "memo"},
    "index": "kagi",
    "kaigo.top": "Top menu",
    "kaigo.login": "Log in",
    "kaigo.security_code": "Security code",
    "kaigo.security_code_wrong": [("#code", "The security code is incorrect.")],
    "kaigo.menu": "Menu",
    "kaigo.security_code_settings": "Security code settings",
    "kaigo.recovery": "Lost login information",
    "kaigo.auth": "Reset authentication",
    "kaigo.auth_errors": [("#office", "Enter the office number as 10 half-width digits."),
                          ("#email", "Enter a valid security e-mail address.")],
    "kaigo.prefecture": "Billing prefecture",
    "kaigo.otp": "One-time password",
    "kaigo.otp_errors": [("#otp", "Enter the one-time password as 6 half-width digits.")],
    "kaigo.reset": "New login information",
    "kaigo.reset_errors": [("#pw", "Enter a password of 8 to 16 characters."),
                           ("#pw", "Include at least one digit in the password."),
                           ("#pw2", "The new password and the new password (again) do not match.")],
    "kaigo.done": "Finished",
    "kaigo.postal": "Request by post",
    "kaigo.postal_errors": [("#office", "Enter the office number."),
                            ("#prefecture", "Please choose the billing prefecture."),
                            ("#office_name", "Enter the Office name."),
                            ("#contact", "Enter the Contact person."),
                            ("#phone", "Enter the telephone number.")],
    "kaigo.postal_done": "Postal request received",
    "kaigo.first_password": "Change password",
    "kaigo.first_password_errors": [("#pw", "The temporary password cannot be used as the new password.")],
    "kaigo.first_email": "Register a security e-mail address",
    "kaigo.first_email_errors": [
        ("#email2", "The security e-mail address and the security e-mail address (again) do not match.")],
    "kaigo.first_code": "One-time password",
    "not_found": "Page not found",
    "hokkaido": "Hokkaido",
    "tokyo": "Tokyo",
    "office_name": "Sapporo Home Care Support",
    "contact": "Hanako Sapporo",
    "portal.top": "Top page",
    "portal.login": "Log in",
    "portal.identify": "Reset your password",
    "portal.captcha_wrong": [
        ("#captcha", "The characters entered are not the ones shown. Please enter the newly shown characters.")],
    "portal.verify": "Personal data check - e-mail address",
    "portal.verify_errors": [("#email", "Enter a valid e-mail address.")],
    "portal.sent": "Password change URL sent",
    "portal.new_password": "Reset your password",
    "portal.new_password_errors": [("#pw2", "The password and the password re-entered do not match.")],
    "portal.reset_done": "Password reset succeeded",
    "portal.register": "New user registration",
    "portal.register_errors": [
        ("#institution", "Enter the institution code as 10 half-width digits (a 2-digit prefecture number and 8 digits)."),
        ("#institution_name", "Enter the Institution name."),
        ("#email_confirm", "The e-mail address and the e-mail address (again) do not match."),
        ("#captcha", "The characters entered are not the ones shown. Please enter the newly shown characters.")],
    "portal.register_sent": "Confirmation mail sent",
    "portal.register_password": "Set a password",
    "portal.register_done": "Registration complete",
    "institution_name": "Demo Clinic",
    "person": "Hanako Tanaka",
}

# The JavaScript of the checks. Each returns plain data.
DESCRIBE = """
window.__kagiDescribe = function (e) {
  if (!e || e === document.body || e === document.documentElement) return e ? e.tagName.toLowerCase() : 'none';
  let s = e.tagName.toLowerCase();
  if (e.id) return s + '#' + e.id;
  for (const a of ['name', 'href', 'value', 'type']) {
    const v = e.getAttribute(a);
    if (v && !(a === 'type' && s !== 'input')) s += '[' + a + '="' + v + '"]';
  }
  if (e.classList.length) s += '.' + Array.from(e.classList).join('.');
  if (e.tagName === 'A' || e.tagName === 'BUTTON') s += '「' + e.textContent.trim().slice(0, 20) + '」';
  const parent = e.parentElement ? window.__kagiDescribe(e.parentElement) : '';
  return parent.includes('#') || !e.parentElement ? parent + ' > ' + s : s;
};
"""

# Elements that stick out to the right of the viewport, deepest first.
OVERFLOW = DESCRIBE + """
const w = window.innerWidth;
const out = [];
for (const e of document.body.querySelectorAll('*')) {
  const r = e.getBoundingClientRect();
  if (r.width > 0 && r.right > w + 0.5 && !Array.from(e.children).some(c => c.getBoundingClientRect().right > w + 0.5))
    out.push(window.__kagiDescribe(e) + ' (right edge ' + Math.round(r.right) + ' px)');
}
return {inner: w, scroll: document.documentElement.scrollWidth, out: out.slice(0, 8)};
"""

# For every step label: where its lines break, and whether the text allows
# a break there (only at a space: a Japanese label has none, so it must
# stay on one line).
STEP_BREAKS = """
const bad = [];
for (const li of document.querySelectorAll('ol.steps li')) {
  const walker = document.createTreeWalker(li, NodeFilter.SHOW_TEXT);
  const chars = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    for (let i = 0; i < n.data.length; i++) {
      const r = document.createRange();
      r.setStart(n, i); r.setEnd(n, i + 1);
      const rect = Array.from(r.getClientRects()).find(x => x.width > 0);
      chars.push({c: n.data[i], top: rect ? rect.top : null});
    }
  }
  let last = null;
  for (let i = 0; i < chars.length; i++) {
    if (chars[i].top === null) continue;
    if (last !== null && chars[i].top > chars[last].top + 2) {
      const between = chars.slice(last, i + 1).map(x => x.c).join('');
      if (!/\\s/.test(between)) bad.push(li.textContent.trim() + ': broken between "' +
        chars.slice(0, i).map(x => x.c).join('').trim() + '" and "' + chars.slice(i).map(x => x.c).join('').trim() + '"');
    }
    last = i;
  }
}
return bad;
"""

# The elements of a form a person reaches with Tab, in the order they are
# seen: rows top to bottom, each row left to right. Of a group of radio
# buttons Tab reaches only the checked one. Each is marked with its place.
VISUAL_ORDER = DESCRIBE + """
const form = document.querySelector(arguments[0]);
const seen = new Set();
const els = Array.from(form.querySelectorAll('a[href], button, input, select, textarea')).filter(e => {
  if (e.disabled || e.type === 'hidden' || e.tabIndex < 0 || e.getClientRects().length === 0) return false;
  if (getComputedStyle(e).visibility === 'hidden') return false;
  if (e.type === 'radio') {
    const group = Array.from(form.querySelectorAll('input[type=radio]')).filter(r => r.name === e.name);
    const chosen = group.find(r => r.checked) || group[0];
    if (e !== chosen || seen.has(e.name)) return false;
    seen.add(e.name);
  }
  return true;
});
const items = els.map(e => ({e: e, r: e.getBoundingClientRect()})).sort((a, b) => a.r.top - b.r.top);
const rows = [];
for (const it of items) {
  const mid = (it.r.top + it.r.bottom) / 2;
  const row = rows[rows.length - 1];
  if (row && mid >= row.top && mid <= row.bottom) { row.items.push(it); row.bottom = Math.max(row.bottom, it.r.bottom); }
  else rows.push({top: it.r.top, bottom: it.r.bottom, items: [it]});
}
const order = [];
for (const row of rows) order.push(...row.items.sort((a, b) => a.r.left - b.r.left).map(it => it.e));
order.forEach((e, i) => e.setAttribute('data-kagi-tab', String(i)));
return order.map(e => window.__kagiDescribe(e));
"""

FOCUSED = DESCRIBE + """
const e = document.activeElement;
return [e && e.hasAttribute('data-kagi-tab') ? Number(e.getAttribute('data-kagi-tab')) : -1, window.__kagiDescribe(e)];
"""

# What axe leaves to others, checked here: a field with an error says so
# and points to its message (aria-invalid, aria-describedby; WCAG 3.3.1),
# a field the form requires says so (required or aria-required: a label
# marked with `.req`, or refused empty by the walk; 3.3.2), and a group
# of radio buttons has a name (fieldset and legend, or a named
# radiogroup; 1.3.1).
FORM_SEMANTICS = DESCRIBE + """
const [pairs, required] = arguments;
const out = [];
const textOf = id => { const e = document.getElementById(id); return e ? e.textContent : ''; };
const invalid = new Set();
for (const [css, message] of pairs) {
  if (!css) continue;
  const f = document.querySelector(css);
  if (!f) { out.push(['aria-invalid', css, 'no such field']); continue; }
  if (f.getAttribute('aria-invalid') !== 'true' && !invalid.has(f) && invalid.add(f))
    out.push(['aria-invalid', window.__kagiDescribe(f), 'its error is shown, but it is not aria-invalid="true"']);
  const described = (f.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean).map(textOf).join(' ');
  if (!described.includes(message))
    out.push(['aria-describedby', window.__kagiDescribe(f), 'does not point to its error "' + message + '"']);
}
const needs = new Set(required.map(c => document.querySelector(c)).filter(Boolean));
for (const l of document.querySelectorAll('label')) if (l.querySelector('.req') && l.control) needs.add(l.control);
for (const f of needs)
  if (!f.required && f.getAttribute('aria-required') !== 'true')
    out.push(['required', window.__kagiDescribe(f), 'required, but neither required nor aria-required="true"']);
const groups = {};
for (const r of document.querySelectorAll('input[type=radio]')) (groups[r.name] = groups[r.name] || []).push(r);
for (const radios of Object.values(groups)) {
  const fs = radios[0].closest('fieldset');
  const rg = radios[0].closest('[role=radiogroup]');
  const named = (fs && fs.querySelector(':scope > legend') && radios.every(r => fs.contains(r))) ||
    (rg && (rg.getAttribute('aria-label') || rg.getAttribute('aria-labelledby')) && radios.every(r => rg.contains(r)));
  if (!named)
    out.push(['radio-group', radios.map(r => window.__kagiDescribe(r)).join(', '),
              'radio buttons of one choice, without a fieldset and legend or a named radiogroup']);
}
return out;
"""

RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, Object.assign({resultTypes: ['violations']}, arguments[0]))
  .then(r => done(r.violations.map(v => ({id: v.id, help: v.help, targets: v.nodes.map(n => n.target.join(' '))}))),
        e => done({error: String(e)}));
"""


# The demo is on this machine: never through a proxy the environment names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class WalkError(Exception):
    """The walk cannot go on: a page did not come, or is not the one expected."""


def wait_for(condition, what, timeout=PATIENCE):
    """Polls `condition` until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WalkError(f"gave up waiting for {what}")
        time.sleep(0.05)


class Report:
    """What every check found, in the order found."""

    def __init__(self):
        self.pages = []
        self.screenshots = 0
        self.problems = []  # (page, check, rule, [elements])

    def fail(self, page, check, rule, elements):
        self.problems.append((page, check, rule, list(elements)))


class Person:
    """One person at the browser, on one demo, in one language."""

    def __init__(self, driver, base, lang, report, axe_source):
        self.d = driver
        self.base = base
        self.lang = lang
        self.words = WORDS[lang]
        self.report = report
        self.axe = axe_source
        self.mail_seen = 0
        # The viewport's size now, and the window's border around it.
        self.size = None
        self.border = None

    # --- what a person does ---

    def go(self, path):
        """Types an address into the browser's bar."""
        self._navigate(lambda: self.d.get(self.base + path))

    def click(self, css):
        """Clicks what `css` finds, and waits for the page it opens."""
        element = self.find(css)
        self._navigate(element.click)

    def click_in_place(self, css):
        """Clicks what `css` finds; the page stays (a radio button)."""
        self.find(css).click()

    def type(self, css, text):
        element = self.find(css)
        element.click()
        element.clear()
        element.send_keys(text)

    def choose(self, css, text):
        Select(self.find(css)).select_by_visible_text(text)

    def enter(self, css):
        """Presses Enter in a text field, and waits for the page it opens."""
        element = self.find(css)
        self._navigate(lambda: element.send_keys(Keys.ENTER))

    def find(self, css):
        try:
            return self.d.find_element(By.CSS_SELECTOR, css)
        except WebDriverException:
            raise WalkError(f"{self.d.current_url}: no {css}") from None

    def value(self, css, attribute="value"):
        return self.find(css).get_attribute(attribute)

    def _navigate(self, action):
        old = self.d.find_element(By.TAG_NAME, "html") if self.d.current_url.startswith("http") else None
        action()
        if old is not None:
            wait_for(lambda: self._stale(old), "the next page")
        wait_for(lambda: self.d.execute_script("return document.readyState") == "complete", "the page to load")

    @staticmethod
    def _stale(element):
        try:
            element.is_enabled()
            return False
        except WebDriverException:
            return True

    # --- what a person reads elsewhere: the mailbox, the CAPTCHA, the app ---

    def _json(self, path):
        with DIRECT.open(self.base + path, timeout=30) as answer:
            return json.load(answer)

    def mark_mail(self):
        """Remembers the newest mail, so that the next one read is newer."""
        mails = self._json("/dev/mail.json?limit=1")
        self.mail_seen = mails[0]["id"] if mails else 0

    def mail_to(self, address):
        """Waits for the next mail to `address`; returns its body."""
        def arrived():
            for mail in self._json(f"/dev/mail.json?after={self.mail_seen}"):
                if mail["to"] == address:
                    self.mail_seen = mail["id"]
                    return mail["body"]
            return None
        return wait_for(arrived, f"a mail to {address}")

    def captcha_answer(self):
        wanted = self.value("input[name=captcha_id]")
        for c in self._json("/dev/captcha.json"):
            if c["id"] == wanted:
                return c["answer"]
        raise WalkError("the CAPTCHA on the page is not in /dev/captcha.json")

    def new_password(self, site, screens, form, title, errors, mistaken, password):
        """On a new-password form: Tab through it, type the `mistaken` pair
        and see `errors` (the page named `screens[1]`), then `password`
        twice, and submit."""
        self.tab_order(site, screens[0], form)
        self.type("#pw", mistaken[0])
        self.type("#pw2", mistaken[1])
        self.click(f"{form} button[type=submit]")
        self.page(site, screens[1], title, errors)
        self.type("#pw", password)
        self.type("#pw2", password)
        self.click(f"{form} button[type=submit]")

    def log_in(self, link, site, user, password):
        """From the page's link to the login, logs in to `site`."""
        self.click(link)
        self.type("#user_id" if site == "kaigo" else "#user", user)
        self.type("#password", password)
        self.click(f"form[action='/{site}/login'] button[type=submit]")

    def press(self, css):
        """Moves the focus to the button `css` finds and presses Enter on
        it, as a person on the keyboard does; waits for the page it opens."""
        element = self.find(css)
        self.d.execute_script("arguments[0].focus()", element)
        self._navigate(lambda: element.send_keys(Keys.ENTER))

    def hear_captcha(self, name):
        """The CAPTCHA as a person who cannot see it meets it: no image on
        the page, a labelled player whose sound the browser decodes, and a
        field that says what to type."""
        if self.d.find_elements(By.CSS_SELECTOR, "img"):
            self.report.fail(name, "captcha by ear", "no image on the page", ["img"])
        player = self.find("div.captcha audio")
        if not player.get_attribute("aria-label"):
            self.report.fail(name, "captcha by ear", "the player has a name", ["audio"])
        # The browser itself must decode the sound: its length is known
        # only once it has read the WAV.
        seconds = wait_for(lambda: self.d.execute_script(
            "const a = document.querySelector('div.captcha audio');"
            "return a.readyState >= 1 && a.duration > 1 && a.duration"), "the sound to load")
        label = self.find("label[for=captcha]").text
        if not re.search(r"\d", label):
            self.report.fail(name, "captcha by ear", "the field says how many digits", [label])
        return seconds

    def totp(self, not_this=None):
        """The demo operator's code, as the app shows it; a new one if
        `not_this` was used already (a code works once)."""
        return wait_for(lambda: (c := self._json("/dev/totp.json")["code"]) != not_this and c,
                        "the next TOTP code", timeout=90)

    # --- the checks ---

    def name(self, site, screen):
        """A page's name in the report and its screenshots' file names; the
        first language's pages have none of their own."""
        return f"{site}-{screen}" if self.lang == LANGUAGES[0] else f"{site}-{screen}-{self.lang}"

    def page(self, site, screen, title, errors=(), required=()):
        """The page now shown must be `title` and show `errors`, pairs of a
        field (or None) and its message; `required`: fields the walk found
        required. Then every check runs on it, and it is screenshotted."""
        name = self.name(site, screen)
        shown = self.d.title.split(" | ")[0]
        if shown != title:
            raise WalkError(f"{name}: expected the page {title!r}, got {shown!r} at {self.d.current_url}")
        text = self.d.find_element(By.TAG_NAME, "body").text
        before = len(self.report.problems)
        speaks = self.d.find_element(By.TAG_NAME, "html").get_attribute("lang")
        if speaks != (self.lang if site != "console" else "ja"):
            self.report.fail(name, "language", "the page speaks the walk's language", [f"html lang={speaks}"])
        for _, message in errors:
            if message not in text:
                self.report.fail(name, "errors", "the error is shown", [message])
        # Wide and full height: axe, the forms, the step bar, a screenshot;
        # then 360 px; then 390 px, full height, a screenshot; back to wide,
        # where the walk goes on.
        self.full_height(WIDE)
        self.axe_check(name)
        for rule, element, why in self.d.execute_script(FORM_SEMANTICS, [list(e) for e in errors], list(required)):
            self.report.fail(name, "forms", rule, [f"{element}: {why}"])
        self.step_bar_check(name)
        self.screenshot(name, WIDE)
        self.overflow_check(name)
        self.full_height(PHONE)
        self.screenshot(name, PHONE)
        self.resize(WIDE)
        found = len(self.report.problems) - before
        self.report.pages.append(name)
        print(f"  {name}: " + ("ok" if not found else f"{found} problem{'s' * (found > 1)}"), flush=True)

    def resize(self, width, height=800):
        """Makes the viewport `width` CSS px wide and `height` high."""
        if self.size == (width, height):
            return
        inner = lambda: self.d.execute_script("return [window.innerWidth, window.innerHeight]")  # noqa: E731
        if self.border is None:
            self.d.set_window_size(width, height)
            now = inner()
            # What the window has around its viewport (nothing, headless).
            self.border = (width - now[0], height - now[1])
        self.d.set_window_size(width + self.border[0], height + self.border[1])
        wait_for(lambda: inner()[0] == width, f"a viewport {width} px wide", timeout=10)
        self.size = (width, height)

    def full_height(self, width):
        """The viewport `width` px wide and as high as the page, up to what
        a person would scroll through anyway."""
        self.resize(width)
        height = self.d.execute_script("return document.documentElement.scrollHeight")
        self.resize(width, min(max(height, 800), 8000))

    def axe_check(self, name):
        for v in self.run_axe(AXE_RULES):
            landmark = v["id"] in AXE_LANDMARKS
            self.report.fail(name, "axe (landmarks)" if landmark else "axe", v["id"], v["targets"])

    def run_axe(self, only):
        if not self.d.execute_script("return typeof window.axe === 'object'"):
            self.d.execute_script(self.axe)
        found = self.d.execute_async_script(RUN_AXE, only)
        if isinstance(found, dict):
            raise WalkError(f"axe failed: {found['error']}")
        return found

    def step_bar_check(self, name):
        for broken in self.d.execute_script(STEP_BREAKS):
            self.report.fail(name, "step bar at 1280 px", "a label breaks inside a word", [broken])

    def overflow_check(self, name):
        self.resize(NARROW)
        o = self.d.execute_script(OVERFLOW)
        if o["inner"] != NARROW:
            raise WalkError(f"the viewport is {o['inner']} px wide, not {NARROW}")
        if o["scroll"] > o["inner"]:
            self.report.fail(name, "360 px", f"scrolls sideways ({o['scroll']} px wide)", o["out"])

    def screenshot(self, name, width):
        SCREENS.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(SCREENS / f"{name}-{width}.png"))
        self.report.screenshots += 1

    def tab_order(self, site, screen, form):
        """From the form's first element, Tab must reach every element a
        person can use in the order they are seen."""
        name = self.name(site, screen)
        self.resize(WIDE)
        expected = self.d.execute_script(VISUAL_ORDER, form)
        first = self.d.find_element(By.CSS_SELECTOR, f"{form} [data-kagi-tab='0']")
        self.d.execute_script("arguments[0].focus()", first)
        reached = [self.d.execute_script(FOCUSED)]
        for _ in expected[1:]:
            ActionChains(self.d).send_keys(Keys.TAB).perform()
            reached.append(self.d.execute_script(FOCUSED))
        if [i for i, _ in reached] != list(range(len(expected))):
            self.report.fail(name, "keyboard", "Tab follows the visual order",
                             [f"seen: {' → '.join(expected)}", f"Tab: {' → '.join(d for _, d in reached)}"])

    def enter_submits(self, site, screen, field, title):
        """Enter in `field` must submit the form's default action: the
        page that comes is `title`."""
        name = self.name(site, screen)
        self.enter(field)
        shown = self.d.title.split(" | ")[0]
        if shown != title:
            self.report.fail(name, "keyboard", "Enter submits the default action",
                             [f"Enter in {field} opened {shown!r}, not {title!r}"])
            raise WalkError(f"{name}: Enter in {field} did not go on")

    def choose_language(self):
        """Opens the kaigo site and, if it speaks another language than
        the walk's, follows the language link to the walk's, which the
        sites remember."""
        self.go("/kaigo")
        lang = lambda: self.d.find_element(By.TAG_NAME, "html").get_attribute("lang")  # noqa: E731
        if lang() != self.lang:
            self.click(f"nav.lang a[hreflang='{self.lang}']")
        if lang() != self.lang:
            raise WalkError(f"the language link did not switch the site to {self.lang}")

    def axe_self_check(self):
        """axe must be live: a field whose label is taken away is reported."""
        self.go("/kaigo/login")
        self.d.execute_script("document.querySelector('label[for=user_id]').remove()")
        found = [v for v in self.run_axe(AXE_RULES) if v["id"] == "label"]
        if not found or not any("#user_id" in t for t in found[0]["targets"]):
            raise WalkError("axe did not report a field without its label: it is not really running")
        print("  axe self-check: a field without its label is reported (label: #user_id)", flush=True)


# --- the walks: one function per site, each taking the language ---

def kaigo(p):
    """kaigo: login with a security code, the recovery by mail, the postal
    request, the 404 page."""
    w = p.words
    p.go("/kaigo")
    p.page("kaigo", "top", w["kaigo.top"])
    p.click("a[href='/kaigo/login']")
    p.page("kaigo", "login", w["kaigo.login"])
    p.tab_order("kaigo", "login", "form[action='/kaigo/login']")

    # The Osaka office logs in: password, then its security code.
    p.type("#user_id", "KJ272711111111")
    p.type("#password", "kaigoDemo27")
    p.enter_submits("kaigo", "login", "#password", w["kaigo.security_code"])
    p.page("kaigo", "security-code", w["kaigo.security_code"])
    p.type("#code", "0000")
    p.click("button[type=submit]")
    p.page("kaigo", "security-code-wrong", w["kaigo.security_code"], w["kaigo.security_code_wrong"])
    p.type("#code", "2468")
    p.click("button[type=submit]")
    p.page("kaigo", "menu", w["kaigo.menu"])
    p.click("a[href='/kaigo/security-code']")
    p.page("kaigo", "security-code-settings", w["kaigo.security_code_settings"])
    p.click("a[href='/kaigo/menu']")
    p.click("form[action='/kaigo/logout'] button")

    # The Tokyo office, which bills two prefectures, recovers by mail.
    p.click("a[href='/kaigo/recovery']")
    p.page("kaigo", "recovery", w["kaigo.recovery"])
    p.tab_order("kaigo", "recovery", "form[action='/kaigo/recovery']")
    p.click("form[action='/kaigo/recovery'] button[type=submit]")
    p.page("kaigo", "recovery-auth", w["kaigo.auth"])
    p.tab_order("kaigo", "recovery-auth", "form[action='/kaigo/recovery/auth']")
    p.type("#office", "13111")
    p.type("#email", "mailforsecurity-001")
    p.click("form[action='/kaigo/recovery/auth'] button[type=submit]")
    p.page("kaigo", "recovery-auth-errors", w["kaigo.auth"], w["kaigo.auth_errors"])
    p.type("#office", "1311111111")
    p.type("#email", "mailforsecurity-001@example.jp")
    p.mark_mail()
    p.enter_submits("kaigo", "recovery-auth", "#office", w["kaigo.prefecture"])
    p.page("kaigo", "recovery-prefecture", w["kaigo.prefecture"])
    p.choose("#prefecture", w["tokyo"])
    p.click("form[action='/kaigo/recovery/prefecture'] button[type=submit]")
    p.page("kaigo", "recovery-otp", w["kaigo.otp"])
    p.tab_order("kaigo", "recovery-otp", "form[action='/kaigo/recovery/otp']")
    p.type("#otp", "12345")
    p.click("form[action='/kaigo/recovery/otp'] button[type=submit]")
    p.page("kaigo", "recovery-otp-error", w["kaigo.otp"], w["kaigo.otp_errors"])
    code = re.search(r"\b(\d{6})\b", p.mail_to("mailforsecurity-001@example.jp")).group(1)
    p.type("#otp", code)
    p.enter_submits("kaigo", "recovery-otp", "#otp", w["kaigo.reset"])
    p.page("kaigo", "recovery-reset", w["kaigo.reset"])
    p.new_password("kaigo", ("recovery-reset", "recovery-reset-errors"), "form[action='/kaigo/recovery/reset']",
                   w["kaigo.reset"], w["kaigo.reset_errors"], ("short", "shorter"), "Tokyo2026new")
    p.page("kaigo", "recovery-done", w["kaigo.done"])
    p.log_in("a[href='/kaigo/login']", "kaigo", "KJ131311111111", "Tokyo2026new")
    p.page("kaigo", "menu-after-recovery", w["kaigo.menu"])
    p.click("form[action='/kaigo/logout'] button")

    # The Sapporo office, with no security address, asks for a letter.
    p.click("a[href='/kaigo/recovery']")
    p.click_in_place("label[for=by-post]")
    p.click("form[action='/kaigo/recovery'] button[type=submit]")
    p.page("kaigo", "postal", w["kaigo.postal"])
    p.tab_order("kaigo", "postal", "form[action='/kaigo/recovery/postal']")
    p.click("form[action='/kaigo/recovery/postal'] button[type=submit]")
    p.page("kaigo", "postal-errors", w["kaigo.postal"], w["kaigo.postal_errors"],
           required=[field for field, _ in w["kaigo.postal_errors"]])
    p.type("#office", "0111111111")
    p.choose("#prefecture", w["hokkaido"])
    p.type("#office_name", w["office_name"])
    p.type("#contact", w["contact"])
    p.type("#phone", "011-123-4567")
    p.enter_submits("kaigo", "postal", "#phone", w["kaigo.postal_done"])
    p.page("kaigo", "postal-done", w["kaigo.postal_done"])

    p.go("/kaigo/no-such-page")
    p.page("kaigo", "404", w["not_found"])


def console(p):
    """The console: login, search, an account, the audit trail, the mail,
    the postal queue and a letter. Returns the letter's temporary password."""
    w = p.words
    p.go("/admin")
    p.page("console", "login", w["console.login"])
    p.tab_order("console", "login", "form[action='/admin/login']")
    wrong = p.totp()
    p.type("#name", "demo-operator")
    p.type("#password", "OperatorDemo2026")
    p.type("#code", str((int(wrong) + 1) % 1000000).zfill(6))
    p.click("form[action='/admin/login'] button[type=submit]")
    p.page("console", "login-wrong", w["console.login"], w["console.login_wrong"])
    p.type("#name", "demo-operator")
    p.type("#password", "OperatorDemo2026")
    used = p.totp()
    p.type("#code", used)
    p.enter_submits("console", "login", "#code", w["console.search"])
    p.page("console", "search", w["console.search"])
    p.type("#q", "KJ27")
    p.enter("#q")
    p.page("console", "search-results", w["console.search"])
    p.click("a[href='/admin/account?site=kaigo&id=KJ272711111111']")
    p.page("console", "account", w["console.account"])
    p.click("a[href='/admin/audit']")
    p.page("console", "audit", w["console.audit"])
    p.click("a[href='/admin/mail']")
    p.page("console", "mail", w["console.mail"])
    p.click("a[href='/admin/postal']")
    p.page("console", "postal", w["console.postal"])
    p.click("a[href^='/admin/postal/request']")
    p.page("console", "postal-request", w["console.postal_request"])
    p.type("#issue-reason", w["memo"])
    # The code is asked again only when the last one is over 5 minutes old.
    if p.d.find_elements(By.CSS_SELECTOR, "form[action='/admin/postal/issue'] #code"):
        p.type("#code", p.totp(not_this=used))
    p.click("form[action='/admin/postal/issue'] button[type=submit]")
    p.page("console", "letter", w["console.letter"])
    temporary = p.find("td.password").text.strip()
    p.go("/admin/no-such-page")
    p.page("console", "404", w["console.not_found"])
    p.go("/admin")
    p.click("form[action='/admin/logout'] button")
    return temporary


def kaigo_first_login(p, temporary):
    """The Sapporo office's first login with the letter's temporary
    password: a new password, then a security address and its code."""
    w = p.words
    p.go("/kaigo/login")
    p.type("#user_id", "KJ010111111111")
    p.type("#password", temporary)
    p.click("form[action='/kaigo/login'] button[type=submit]")
    p.page("kaigo", "first-password", w["kaigo.first_password"])
    p.new_password("kaigo", ("first-password", "first-password-error"), "form[action='/kaigo/first/password']",
                   w["kaigo.first_password"], w["kaigo.first_password_errors"], (temporary, temporary),
                   "Sapporo2026new")
    p.page("kaigo", "first-email", w["kaigo.first_email"])
    p.tab_order("kaigo", "first-email", "form[action='/kaigo/first/email']")
    p.type("#email", "sapporo@example.jp")
    p.type("#email2", "sapporo@example.com")
    p.click("form[action='/kaigo/first/email'] button[type=submit]")
    p.page("kaigo", "first-email-error", w["kaigo.first_email"], w["kaigo.first_email_errors"])
    p.type("#email", "sapporo@example.jp")
    p.type("#email2", "sapporo@example.jp")
    p.mark_mail()
    p.enter_submits("kaigo", "first-email", "#email2", w["kaigo.first_code"])
    p.page("kaigo", "first-code", w["kaigo.first_code"])
    code = re.search(r"\b(\d{6})\b", p.mail_to("sapporo@example.jp")).group(1)
    p.type("#otp", code)
    p.click("form[action='/kaigo/first/code'] button[type=submit]")
    p.page("kaigo", "menu-first-login", w["kaigo.menu"])
    p.click("form[action='/kaigo/logout'] button")


def portal(p):
    """The portal: a provisional account's home, the password reset by
    mailed link, the new-user registration, the 404 page."""
    w = p.words
    p.go("/portal")
    p.page("portal", "top", w["portal.top"])
    p.click("a.tile[href='/portal/login']")
    p.page("portal", "login", w["portal.login"])
    p.tab_order("portal", "login", "form[action='/portal/login']")
    p.type("#user", "kari-user")
    p.type("#password", "PortalKari2026")
    p.enter_submits("portal", "login", "#password", w["portal.top"])
    p.page("portal", "home-provisional", w["portal.top"])
    p.click("form[action='/portal/logout'] button")

    # demo-user forgot the password.
    p.click("a[href='/portal/login']")
    p.click("a[href='/portal/reset']")
    p.page("portal", "reset", w["portal.identify"])
    p.tab_order("portal", "reset", "form[action='/portal/reset']")
    p.type("#user", "demo-user")
    p.type("#captcha", "wrong")
    p.click("form[action='/portal/reset'] div.buttons button")
    p.page("portal", "reset-captcha-wrong", w["portal.identify"], w["portal.captcha_wrong"])
    # demo-user cannot see the image: from the keyboard, the sound instead;
    # the answer is what a person hears (the lab's /dev/captcha.json).
    p.press("form[action='/portal/reset'] button[name=action][value=audio]")
    p.page("portal", "reset-captcha-audio", w["portal.identify"])
    seconds = p.hear_captcha(p.name("portal", "reset-captcha-audio"))
    print(f"  portal-reset-captcha-audio: the browser plays {seconds:.1f} s of sound", flush=True)
    p.type("#captcha", p.captcha_answer())
    p.type("#user", "demo-user")
    p.enter_submits("portal", "reset", "#user", w["portal.verify"])
    p.page("portal", "reset-verify", w["portal.verify"])
    p.tab_order("portal", "reset-verify", "form[action='/portal/reset/verify']")
    p.type("#email", "demo-user")
    p.click("form[action='/portal/reset/verify'] button[type=submit]")
    p.page("portal", "reset-verify-error", w["portal.verify"], w["portal.verify_errors"])
    p.type("#email", "demo-user@example.jp")
    p.mark_mail()
    p.enter_submits("portal", "reset-verify", "#email", w["portal.sent"])
    p.page("portal", "reset-sent", w["portal.sent"])
    link = re.search(r"https?://[^/\s]+(/portal/passwordreset\S*)", p.mail_to("demo-user@example.jp")).group(1)
    p.go(link)
    p.page("portal", "reset-password", w["portal.new_password"])
    p.new_password("portal", ("reset-password", "reset-password-error"), "form[action='/portal/passwordreset']",
                   w["portal.new_password"], w["portal.new_password_errors"], ("PortalNew2026", "PortalNew2027"),
                   "PortalNew2026")
    p.page("portal", "reset-done", w["portal.reset_done"])
    p.log_in("main a[href='/portal/login']", "portal", "demo-user", "PortalNew2026")
    p.page("portal", "home", w["portal.top"])
    p.click("form[action='/portal/logout'] button")

    # A new user registers for kari-user's institution.
    p.click("a.tile[href='/portal/register']")
    p.page("portal", "register", w["portal.register"])
    p.tab_order("portal", "register", "form[action='/portal/register']")
    p.type("#institution", "13123")
    p.type("#contact", w["person"])
    p.type("#email", "tanaka@example.jp")
    p.type("#email_confirm", "tanaka@example.com")
    p.type("#user", "tanaka-hanako")
    p.type("#captcha", "wrong")
    p.click("form[action='/portal/register'] div.buttons button")
    p.page("portal", "register-errors", w["portal.register"], w["portal.register_errors"])
    p.type("#institution", "1312345678")
    p.type("#institution_name", w["institution_name"])
    p.type("#contact", w["person"])
    p.type("#email", "tanaka@example.jp")
    p.type("#email_confirm", "tanaka@example.jp")
    p.type("#captcha", p.captcha_answer())
    p.type("#user", "tanaka-hanako")
    p.mark_mail()
    p.enter_submits("portal", "register", "#user", w["portal.register_sent"])
    p.page("portal", "register-sent", w["portal.register_sent"])
    link = re.search(r"https?://[^/\s]+(/portal/register/\S*)", p.mail_to("tanaka@example.jp")).group(1)
    p.go(link)
    p.page("portal", "register-password", w["portal.register_password"])
    p.tab_order("portal", "register-password", "form[action='/portal/register/confirm']")
    p.type("#pw", "TanakaNew2026")
    p.type("#pw2", "TanakaNew2026")
    p.click("form[action='/portal/register/confirm'] button[type=submit]")
    p.page("portal", "register-done", w["portal.register_done"])
    p.log_in("main a[href='/portal/login']", "portal", "tanaka-hanako", "TanakaNew2026")
    p.page("portal", "home-registered", w["portal.top"])
    p.click("form[action='/portal/logout'] button")

    p.go("/portal/no-such-page")
    p.page("portal", "404", w["not_found"])


def walk(kagi, lang, driver, report, axe_source, workdir, self_check):
    """Every walk in one language, on a demo of its own (the walks change
    passwords and register a user); first, if `self_check`, the proof
    that axe runs."""
    demo, m = start([kagi, "demo", "--listen", "127.0.0.1:0", "--data-dir", f"{workdir}/demo-{lang}"],
                    r"ready in \d+ ms on http://(\S+)")
    try:
        p = Person(driver, "http://" + m.group(1), lang, report, axe_source)
        print(f"{lang}: the demo at {p.base}", flush=True)
        p.choose_language()
        if self_check:
            p.axe_self_check()
        p.go("/")
        p.page("kagi", "index", p.words["index"])
        kaigo(p)
        portal(p)
        temporary = console(p)
        kaigo_first_login(p, temporary)
    finally:
        stop(demo)


def descendants(pid):
    """The processes below `pid`, from /proc (chromedriver's browser)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [c for c, pp in parents.items() if pp == parent]
        found += children
        todo += children
    return found


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    kagi = os.path.abspath(sys.argv[1])
    began = time.monotonic()
    axe_source = (NODE / "node_modules" / "axe-core" / "axe.min.js").read_text()
    shutil.rmtree(SCREENS, ignore_errors=True)
    report = Report()
    workdir = tempfile.mkdtemp(prefix="kagi-browser-")
    driver_log = open(f"{workdir}/chromedriver.log", "w")
    chromedriver = subprocess.Popen([CHROMEDRIVER, "--port=0"], stdout=subprocess.PIPE, stderr=driver_log,
                                    text=True)
    driver = None
    failed = None
    try:
        port = None
        for line in chromedriver.stdout:
            m = re.search(r"started successfully on port (\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            raise WalkError("chromedriver did not start")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS + [f"--user-data-dir={workdir}/profile"]:
            options.add_argument(flag)
        # The browser of someone in a Japanese office: it asks for Japanese
        # first; a walk in another language chooses it with the link.
        options.add_experimental_option("prefs", {"intl.accept_languages": f"{LANGUAGES[0]},en"})
        driver = webdriver.Remote(command_executor=f"http://127.0.0.1:{port}", options=options)
        driver.set_script_timeout(PATIENCE)
        for lang in LANGUAGES:
            walk(kagi, lang, driver, report, axe_source, workdir, self_check=lang == LANGUAGES[0])
    except (WalkError, WebDriverException) as e:
        failed = e
    finally:
        if driver is not None:
            try:
                driver.quit()
            except WebDriverException:
                pass
        left = descendants(chromedriver.pid)
        stop(chromedriver)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        driver_log.close()
        shutil.rmtree(workdir, ignore_errors=True)

    took = time.monotonic() - began
    if report.problems:
        print(f"\n{len(report.problems)} problems (page → check → rule → elements):")
        for page, check, rule, elements in report.problems:
            print(f"  {page} → {check} → {rule}")
            for e in elements:
                print(f"      {e}")
    print(f"\npages checked: {len(report.pages)}; screenshots: {report.screenshots} in "
          f"{SCREENS.relative_to(ROOT)}/; took {took:.0f} s")
    if failed is not None:
        print(f"the walk stopped: {failed}")
    if failed is not None or report.problems:
        sys.exit(1)
    print("browser: every check passed")


if __name__ == "__main__":
    main()
