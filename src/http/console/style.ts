// The console's one stylesheet, served from /admin/assets/console.css (the Content-Security-Policy
// allows styles from the console's own origin only: no inline style anywhere). Colours keep a
// contrast of at least 4.5:1 on their backgrounds (WCAG AA), which the browser test's axe check holds.
export const CONSOLE_CSS = `
:root { --ink: #1b1f24; --muted: #4a5562; --line: #c9d1da; --accent: #0b5cad; --bad: #a4161a; --good: #1d6b34; --paper: #ffffff; --wash: #f3f5f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--wash); }
a { color: var(--accent); }
header { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.2rem; background: var(--ink); color: #fff; }
header a { color: #fff; text-decoration: none; padding: .2rem .1rem; }
header a[aria-current="page"] { border-bottom: 2px solid #fff; }
header .brand { font-weight: 700; margin-right: 1rem; }
header form { margin-left: auto; }
header .who { color: #e6e9ee; font-size: .9rem; }
nav ul { display: flex; gap: 1.2rem; list-style: none; margin: 0; padding: 0; }
main { max-width: 72rem; margin: 1.2rem auto; padding: 0 1.2rem; }
h1 { font-size: 1.5rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .6rem; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.2rem; margin-bottom: 1rem; }
table { width: 100%; border-collapse: collapse; background: var(--paper); }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
td code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; word-break: break-all; }
form.inline { display: inline; }
.row { display: flex; flex-wrap: wrap; gap: .8rem; align-items: end; }
label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .2rem; }
input, select { font: inherit; padding: .35rem .5rem; border: 1px solid #7a8694; border-radius: 4px; color: var(--ink); background: #fff; }
button { font: inherit; padding: .35rem .8rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.quiet { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
header button { background: transparent; border-color: #fff; }
.notice { border-left: 4px solid var(--good); background: #eef7f0; padding: .6rem .9rem; margin-bottom: 1rem; }
.error { border-left: 4px solid var(--bad); background: #fbeeee; padding: .6rem .9rem; margin-bottom: 1rem; }
.secret { border: 2px dashed var(--bad); background: #fff; padding: .8rem; }
.status-active, .status-ready, .status-success, .status-loaded { color: var(--good); font-weight: 600; }
.status-suspended, .status-failed, .status-failure, .status-refused { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
.pager { display: flex; gap: 1rem; margin-top: .8rem; }
.signin { max-width: 26rem; margin: 4rem auto; }
.signin form { display: flex; flex-direction: column; gap: .8rem; }
`
