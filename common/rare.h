// Rare<T>: a field that is empty for almost every job (its environment, -o/-e paths,
// dependencies, a failure reason), held through one pointer: 8 bytes in the Job instead of
// sizeof(T) (32 for a string, 24 for a vector, 48 for a map), the value allocated only
// once it is set. A million jobs are a million copies of every field in ClusterState's
// maps (docs/performance.md, "memory per job"): these fields were ~40 % of sizeof(Job).
//
// It reads as the T it holds (an empty T while unset): it converts to `const T&`, and
// forwards the const members code uses (empty, size, begin, find, ...), comparisons,
// concatenation and streaming. Assigning a T sets it; the mutating members (push_back,
// operator[] of a map, ...) allocate it. Iteration is read-only: change the value through
// mut() or by assigning a new one. Equality is by value (unset == set to empty), so
// JobSpec's and Job's defaulted operator== mean what they did.
#pragma once

#include <concepts>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace corral {

template <typename T>
class Rare {
 public:
  using value_type = typename T::value_type;
  using size_type = typename T::size_type;
  using const_iterator = typename T::const_iterator;
  using iterator = const_iterator;  // iteration is read-only

  Rare() = default;
  Rare(const Rare& o) { Set(o.get()); }
  Rare(Rare&& o) noexcept = default;
  Rare& operator=(const Rare& o) {
    if (this != &o) Set(o.get());
    return *this;
  }
  Rare& operator=(Rare&& o) noexcept = default;
  // From anything a T is made from: a T, a string literal, a braced list.
  template <typename U>
    requires(!std::same_as<std::remove_cvref_t<U>, Rare> && std::constructible_from<T, U &&>)
  Rare(U&& v) {  // NOLINT: implicit on purpose, so that the field reads as a T
    Set(T(std::forward<U>(v)));
  }
  Rare(std::initializer_list<value_type> list) { Set(T(list)); }
  template <typename U>
    requires(!std::same_as<std::remove_cvref_t<U>, Rare> && std::constructible_from<T, U &&>)
  Rare& operator=(U&& v) {
    Set(T(std::forward<U>(v)));
    return *this;
  }

  // The value; an empty T while unset.
  const T& get() const { return p_ ? *p_ : Empty(); }
  operator const T&() const { return get(); }  // NOLINT: implicit on purpose
  // A string reads as a string_view too, as a std::string does.
  operator std::string_view() const  // NOLINT: implicit on purpose
    requires std::same_as<T, std::string>
  {
    return get();
  }
  // The value, to change in place (allocated if unset).
  T& mut() {
    if (!p_) p_ = std::make_unique<T>();
    return *p_;
  }

  bool empty() const { return !p_ || p_->empty(); }
  size_type size() const { return p_ ? p_->size() : 0; }
  const_iterator begin() const { return get().begin(); }
  const_iterator end() const { return get().end(); }
  const_iterator cbegin() const { return get().begin(); }
  const_iterator cend() const { return get().end(); }

  // Const members of T, forwarded (find, count, contains, at, front, back, c_str, data,
  // substr, starts_with, ...).
#define CORRAL_RARE_FORWARD(name)                                                         \
  template <typename... A, typename U = T>                                                 \
  auto name(A&&... a) const -> decltype(std::declval<const U&>().name(std::forward<A>(a)...)) { \
    return get().name(std::forward<A>(a)...);                                             \
  }
  CORRAL_RARE_FORWARD(find)
  CORRAL_RARE_FORWARD(rfind)
  CORRAL_RARE_FORWARD(count)
  CORRAL_RARE_FORWARD(contains)
  CORRAL_RARE_FORWARD(at)
  CORRAL_RARE_FORWARD(front)
  CORRAL_RARE_FORWARD(back)
  CORRAL_RARE_FORWARD(c_str)
  CORRAL_RARE_FORWARD(data)
  CORRAL_RARE_FORWARD(length)
  CORRAL_RARE_FORWARD(substr)
  CORRAL_RARE_FORWARD(starts_with)
  CORRAL_RARE_FORWARD(ends_with)
  CORRAL_RARE_FORWARD(compare)
  CORRAL_RARE_FORWARD(find_first_of)
  CORRAL_RARE_FORWARD(find_first_not_of)
  CORRAL_RARE_FORWARD(find_last_of)
#undef CORRAL_RARE_FORWARD
  template <typename K>
  auto operator[](K&& k) const -> decltype(std::declval<const T&>()[std::forward<K>(k)]) {
    return get()[std::forward<K>(k)];
  }

  // Mutators: allocate the value, then forward.
#define CORRAL_RARE_MUTATOR(name)                                                   \
  template <typename... A, typename U = T>                                           \
  auto name(A&&... a) -> decltype(std::declval<U&>().name(std::forward<A>(a)...)) { \
    return mut().name(std::forward<A>(a)...);                                       \
  }
  CORRAL_RARE_MUTATOR(push_back)
  CORRAL_RARE_MUTATOR(emplace_back)
  CORRAL_RARE_MUTATOR(emplace)
  CORRAL_RARE_MUTATOR(insert)
  CORRAL_RARE_MUTATOR(insert_or_assign)
  CORRAL_RARE_MUTATOR(try_emplace)
  CORRAL_RARE_MUTATOR(append)
  CORRAL_RARE_MUTATOR(assign)
  CORRAL_RARE_MUTATOR(reserve)
  CORRAL_RARE_MUTATOR(resize)
  CORRAL_RARE_MUTATOR(pop_back)
  CORRAL_RARE_MUTATOR(erase)
#undef CORRAL_RARE_MUTATOR
  template <typename K>
  auto operator[](K&& k) -> decltype(std::declval<T&>()[std::forward<K>(k)]) {
    return mut()[std::forward<K>(k)];
  }
  template <typename U>
  auto operator+=(U&& u) -> decltype(std::declval<T&>() += std::forward<U>(u), *this) {
    mut() += std::forward<U>(u);
    return *this;
  }
  void clear() { p_.reset(); }
  void swap(Rare& o) noexcept { p_.swap(o.p_); }

  friend bool operator==(const Rare& a, const Rare& b) { return a.get() == b.get(); }
  template <typename U>
    requires(!std::same_as<std::remove_cvref_t<U>, Rare>)
  friend bool operator==(const Rare& a, const U& b) {
    return a.get() == b;
  }
  // Not a requires-clause: clang before 16 substitutes into the return type before it
  // checks one, and U = Rare then recurses without end. A default template argument is
  // substituted first, in every compiler.
  template <typename U, typename = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<U>, Rare>>>
  friend auto operator+(const Rare& a, U&& b) -> decltype(std::declval<const T&>() + std::forward<U>(b)) {
    return a.get() + std::forward<U>(b);
  }
  friend T operator+(const Rare& a, const Rare& b) { return a.get() + b.get(); }
  template <typename U, typename = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<U>, Rare>>>
  friend auto operator+(U&& a, const Rare& b) -> decltype(std::forward<U>(a) + std::declval<const T&>()) {
    return std::forward<U>(a) + b.get();
  }
  template <typename Char, typename Traits>
  friend auto operator<<(std::basic_ostream<Char, Traits>& os, const Rare& r)
      -> decltype(os << std::declval<const T&>()) {
    return os << r.get();
  }

 private:
  // Keeps the pointer null for an empty value, so that a record decoded with every field
  // set to "" or {} allocates nothing.
  void Set(T v) {
    if (v.empty()) {
      p_.reset();
    } else if (p_) {
      *p_ = std::move(v);
    } else {
      p_ = std::make_unique<T>(std::move(v));
    }
  }
  static const T& Empty() {
    static const T empty{};
    return empty;
  }

  std::unique_ptr<T> p_;
};

}  // namespace corral
