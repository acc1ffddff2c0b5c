export { HashBank, HashBankSet, pdqConfidence, type HashBankEntry, type HashBankOptions } from './bank.ts';
export { MultiIndexHashTable, type MihHit } from './mih.ts';
