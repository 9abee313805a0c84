// Constructors of the concrete providers, for MakeProvider (provider.cc).
#pragma once

#include <memory>

#include "llm/provider.h"

namespace kbrun::llm {

std::unique_ptr<Provider> MakeOpenAiProvider(const ProviderConfig& config);
std::unique_ptr<Provider> MakeAnthropicProvider(const ProviderConfig& config);
std::unique_ptr<Provider> MakeReplayProvider(const ProviderConfig& config);

}  // namespace kbrun::llm
