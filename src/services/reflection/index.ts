export { serveReflection, reflectionV1Impl, reflectionV1AlphaImpl, answerReflection, ServerReflectionV1, ServerReflectionV1Alpha } from "./reflection.js";
export { createDescriptorIndex, fileDescriptorBytes } from "./descriptor-index.js";
export type { DescriptorIndex } from "./descriptor-index.js";
export { createReflectionClient } from "./reflection-client.js";
export type { ReflectionClient } from "./reflection-client.js";
export { sortByImports } from "./reflection-client.js";
