// std::expected and std::unexpected for a compiler whose standard library hides them:
// libstdc++ 12 offers <expected> only when __cpp_concepts >= 202002L, which clang 14 (used
// for the sanitizer and fuzzing builds, scripts/sanitize.sh) does not claim. g++ 12 never
// sees this fallback. It covers what Corral uses of the real thing (construction from a
// value or std::unexpected, has_value / operator bool, *, ->, value, value_or, error,
// ==); value() on an error throws std::logic_error instead of bad_expected_access.
// Declaring names in namespace std is formally reserved to the implementation; this is
// done only when the implementation declares none of them.
#pragma once

#include <expected>

#if !defined(__cpp_lib_expected)

#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace std {

template <typename E>
class unexpected {
 public:
  template <typename G = E>
    requires(!is_same_v<remove_cvref_t<G>, unexpected> && is_constructible_v<E, G>)
  constexpr explicit unexpected(G&& e) : error_(std::forward<G>(e)) {}

  constexpr const E& error() const& noexcept { return error_; }
  constexpr E& error() & noexcept { return error_; }
  constexpr E&& error() && noexcept { return std::move(error_); }

  template <typename G>
  friend constexpr bool operator==(const unexpected& a, const unexpected<G>& b) {
    return a.error() == b.error();
  }

 private:
  E error_;
};

template <typename E>
unexpected(E) -> unexpected<E>;

template <typename T, typename E>
class expected {
 public:
  using value_type = T;
  using error_type = E;

  constexpr expected()
    requires is_default_constructible_v<T>
      : v_(in_place_index<0>) {}
  template <typename U = T>
    requires(!is_same_v<remove_cvref_t<U>, expected> &&
             !is_same_v<remove_cvref_t<U>, in_place_t> && is_constructible_v<T, U>)
  constexpr expected(U&& value) : v_(in_place_index<0>, std::forward<U>(value)) {}
  template <typename G>
    requires is_constructible_v<E, const G&>
  constexpr expected(const unexpected<G>& e) : v_(in_place_index<1>, e.error()) {}
  template <typename G>
    requires is_constructible_v<E, G>
  constexpr expected(unexpected<G>&& e) : v_(in_place_index<1>, std::move(e).error()) {}
  template <typename... Args>
  constexpr explicit expected(in_place_t, Args&&... args)
      : v_(in_place_index<0>, std::forward<Args>(args)...) {}

  constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }

  constexpr const T& operator*() const& noexcept { return *get_if<0>(&v_); }
  constexpr T& operator*() & noexcept { return *get_if<0>(&v_); }
  constexpr T&& operator*() && noexcept { return std::move(*get_if<0>(&v_)); }
  constexpr const T* operator->() const noexcept { return get_if<0>(&v_); }
  constexpr T* operator->() noexcept { return get_if<0>(&v_); }

  constexpr const T& value() const& { return Check(), **this; }
  constexpr T& value() & { return Check(), **this; }
  constexpr T&& value() && { return Check(), std::move(**this); }
  template <typename U>
  constexpr T value_or(U&& other) const& {
    return has_value() ? **this : static_cast<T>(std::forward<U>(other));
  }
  template <typename U>
  constexpr T value_or(U&& other) && {
    return has_value() ? std::move(**this) : static_cast<T>(std::forward<U>(other));
  }

  constexpr const E& error() const& noexcept { return *get_if<1>(&v_); }
  constexpr E& error() & noexcept { return *get_if<1>(&v_); }
  constexpr E&& error() && noexcept { return std::move(*get_if<1>(&v_)); }

  template <typename U>
    requires(!is_same_v<remove_cvref_t<U>, expected>)
  friend constexpr bool operator==(const expected& a, const U& value) {
    return a.has_value() && *a == value;
  }
  template <typename G>
  friend constexpr bool operator==(const expected& a, const unexpected<G>& e) {
    return !a.has_value() && a.error() == e.error();
  }

 private:
  constexpr void Check() const {
    if (!has_value()) throw logic_error("value() of an expected that holds an error");
  }
  variant<T, E> v_;
};

}  // namespace std

#endif  // !defined(__cpp_lib_expected)
