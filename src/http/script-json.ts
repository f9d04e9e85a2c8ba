/**
 * A value as JSON to put inside `<script type="application/json">` with EJS's unescaped output
 * (`<%- %>`): "<", ">" and "&" are written as \u escapes, so no text in the value (a username
 * such as "</script><script>…") can end the element early; U+2028 and U+2029 too, which old
 * parsers took for line ends. JSON.parse reads the escapes back as the same characters.
 */
export function jsonForScriptElement(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
