/**
 * An nkey seed as a command would print it: 58 characters (`S`, its role, 56 more), for tests that check none is
 * printed. Not fewer: a public key (56 characters) holds `S[OAU]` followed by 50 more in about one key in 110
 * (from its third character on), and a `SU` followed by 20 in more: a run printing a few keys failed such a
 * check now and then (seen in the 2026-12-01 mutation audit, and in a CI run of `keys rotate log`).
 */
export const PRINTED_SEED = /S[OAU][A-Z2-7]{56}/
