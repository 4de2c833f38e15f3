/** src/'s files as one string (path, size, modification time each): see source-stamp.js. */
export function sourceStamp(root: string): string
