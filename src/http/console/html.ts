// The console's templates: tagged template literals that escape every value put into them, so
// no tenant name, audit field or error text can become markup. Only what another `html` template
// made (an Html) goes in as it is. No build step, no template files to copy.
export class Html {
  constructor(readonly text: string) {}
  toString() {
    return this.text
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c])
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === null || value === undefined || value === false) return ''
  return escape(String(value))
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0]
  for (let i = 0; i < values.length; i++) text += render(values[i]) + strings[i + 1]
  return new Html(text)
}
