// JSON conversions of Rare<T> (common/rare.h): as the T it holds.
#pragma once

#include <nlohmann/json.hpp>

#include "common/rare.h"

namespace corral {

template <typename T>
void to_json(nlohmann::json& j, const Rare<T>& r) {
  j = r.get();
}

template <typename T>
void from_json(const nlohmann::json& j, Rare<T>& r) {
  r = j.get<T>();
}

}  // namespace corral
