/**
 * Columns by display width, not by UTF-16 length: a CJK character or an emoji takes two cells
 * of a terminal, a combining accent none (string-width knows Unicode's East Asian Width table).
 */
import stringWidth from 'string-width';

export const widthOf = (s: string): number => stringWidth(s);

export const padEnd = (s: string, width: number): string => s + ' '.repeat(Math.max(0, width - widthOf(s)));

export const padStart = (s: string, width: number): string => ' '.repeat(Math.max(0, width - widthOf(s))) + s;
