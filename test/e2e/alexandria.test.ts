/** Alexandria with its default store, in memory: every case of alexandria-cases.ts. */
import { memoryStore } from "../../examples/alexandria/store.js";
import { alexandriaCases } from "./alexandria-cases.js";

alexandriaCases("memory", async () => memoryStore());
