// Sweep files: grid, zip, csv and files expansion and their product, every error with its
// message (file:line: key), the 1,000,000-point cap, and a point's JSON and PARAM_* forms.
#include "qtools/sweep.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "temp_dir.h"

using namespace corral;
using corral::testing::TempDir;

namespace {

// Each point as "a=1 b=x".
std::vector<std::string> Flat(const std::vector<ParamPoint>& points) {
  std::vector<std::string> out;
  for (const ParamPoint& p : points) {
    std::string s;
    for (const auto& [name, value] : p) s += (s.empty() ? "" : " ") + name + "=" + value;
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> Expand(const std::string& yaml, const std::string& base = ".") {
  Result<std::vector<ParamPoint>> points = ExpandSweep(yaml, "s.yaml", base);
  REQUIRE_MESSAGE(points.has_value(), points.error().ToString());
  return Flat(*points);
}

// The error message, or "OK".
std::string Err(const std::string& yaml, const std::string& base = ".") {
  Result<Sweep> sweep = ParseSweep(yaml, "s.yaml", base);
  return sweep ? "OK" : sweep.error().message();
}

void Write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("sweep grid: cartesian product, first name slowest, values as written") {
  CHECK(Expand("grid:\n  filter: [gaussian, median]\n  sigma: [0.50, 1, 2e0]\n") ==
        std::vector<std::string>{"filter=gaussian sigma=0.50", "filter=gaussian sigma=1",
                                 "filter=gaussian sigma=2e0", "filter=median sigma=0.50",
                                 "filter=median sigma=1", "filter=median sigma=2e0"});
  CHECK(Expand("grid:\n  id: ['007', \"x y\", '', true, 0x1F]\n") ==
        std::vector<std::string>{"id=007", "id=x y", "id=", "id=true", "id=0x1F"});
}

TEST_CASE("sweep zip: lists taken row by row") {
  CHECK(Expand("zip:\n  size: [3, 5, 9]\n  sigma:\n    - 0.5\n    - 1.0\n    - 2.0\n") ==
        std::vector<std::string>{"size=3 sigma=0.5", "size=5 sigma=1.0", "size=9 sigma=2.0"});
}

TEST_CASE("sweep csv: header of names, RFC 4180 quoting, BOM, CRLF, blank lines") {
  TempDir dir;
  Write(dir.path() + "/p/points.csv",
        "\xEF\xBB\xBFname,desc\r\n"
        "a,\"x, y\"\r\n"
        "b,\"say \"\"hi\"\"\"\r\n"
        "\r\n"
        "c,\"two\nlines\"\n"
        "d,\n"
        "e,\"\"");
  CHECK(Expand("csv: p/points.csv\n", dir.path()) ==
        std::vector<std::string>{"name=a desc=x, y", "name=b desc=say \"hi\"",
                                 "name=c desc=two\nlines", "name=d desc=", "name=e desc="});
  // An absolute path ignores base_dir.
  CHECK(Expand("csv: " + dir.path() + "/p/points.csv\n", "/nonexistent").size() == 5);
}

TEST_CASE("sweep files: sorted absolute paths; the base directory is not a pattern") {
  TempDir dir;
  const std::string base = dir.path() + "/data[1]";
  for (const char* f : {"images/b.png", "images/a.png", "images/c.txt", "images/B.png"}) {
    Write(base + "/" + f, "x");
  }
  CHECK(Expand("files:\n  image: images/*.png\n", base) ==
        std::vector<std::string>{"image=" + base + "/images/B.png",
                                 "image=" + base + "/images/a.png",
                                 "image=" + base + "/images/b.png"});
  CHECK(Expand("files:\n  image: ./images/../images/c.*\n", base) ==
        std::vector<std::string>{"image=" + base + "/images/c.txt"});
}

TEST_CASE("sweep parts combine as a product in file order") {
  TempDir dir;
  Write(dir.path() + "/rows.csv", "subject,age\ns1,30\ns2,40\n");
  Write(dir.path() + "/img/x.png", "");
  Write(dir.path() + "/img/y.png", "");
  const std::string yaml =
      "zip:\n  size: [3, 5]\n  sigma: [0.5, 1]\n"
      "grid:\n  filter: [gaussian, median]\n"
      "csv: rows.csv\n"
      "files:\n  image: img/*.png\n";
  const std::vector<std::string> points = Expand(yaml, dir.path());
  REQUIRE(points.size() == 2 * 2 * 2 * 2);
  const std::string x = dir.path() + "/img/x.png", y = dir.path() + "/img/y.png";
  CHECK(points[0] == "size=3 sigma=0.5 filter=gaussian subject=s1 age=30 image=" + x);
  CHECK(points[1] == "size=3 sigma=0.5 filter=gaussian subject=s1 age=30 image=" + y);
  CHECK(points[2] == "size=3 sigma=0.5 filter=gaussian subject=s2 age=40 image=" + x);
  CHECK(points[4] == "size=3 sigma=0.5 filter=median subject=s1 age=30 image=" + x);
  CHECK(points[15] == "size=5 sigma=1 filter=median subject=s2 age=40 image=" + y);

  Result<Sweep> sweep = ParseSweep(yaml, "s.yaml", dir.path());
  REQUIRE(sweep.has_value());
  CHECK(sweep->size() == 16);
  CHECK(sweep->names() ==
        std::vector<std::string>{"size", "sigma", "filter", "subject", "age", "image"});
}

TEST_CASE("sweep cap: 1,000,000 points are held as axes; one more is refused") {
  std::string thousand = "[";
  for (int i = 0; i < 1000; ++i) thousand += (i ? "," : "") + std::to_string(i);
  thousand += "]";
  Result<Sweep> sweep =
      ParseSweep("grid:\n  a: " + thousand + "\n  b: " + thousand + "\n", "s.yaml", ".");
  REQUIRE(sweep.has_value());
  CHECK(sweep->size() == kMaxSweepPoints);
  CHECK(Flat({sweep->Point(0), sweep->Point(1001), sweep->Point(999'999)}) ==
        std::vector<std::string>{"a=0 b=0", "a=1 b=1", "a=999 b=999"});
  CHECK(Err("grid:\n  a: " + thousand + "\n  b: " + thousand + "\nzip:\n  c: [1, 2]\n") ==
        "s.yaml:4: zip: the sweep would have more than 1000000 points (1000 x 1000 x 2); "
        "split it into several sweeps");
  CHECK(Err("grid:\n  a: " + thousand + "\n  b: " + thousand + "\n  c: [1, 2]\n") ==
        "s.yaml:4: grid.c: the sweep would have more than 1000000 points (1000 x 1000 x 2); "
        "split it into several sweeps");
}

TEST_CASE("sweep errors name file, line and key") {
  CHECK(Err("") == "s.yaml: empty sweep file (expected grid, zip, csv, files)");
  CHECK(Err("{}") == "s.yaml: defines no parameters (expected grid, zip, csv, files)");
  CHECK(Err("- a\n- b\n") == "s.yaml:1: must be a mapping of grid, zip, csv, files");
  CHECK(Err("grid: [a\n").starts_with("s.yaml:2: not valid YAML: "));
  CHECK(Err("grid:\n  a: [1]\ngrd:\n  b: [2]\n") ==
        "s.yaml:3: unknown key 'grd' (known: grid, zip, csv, files)");
  CHECK(Err("grid:\n  a: [1]\ngrid:\n  b: [2]\n") == "s.yaml:3: grid: appears twice");
  CHECK(Err("grid: [1, 2]\n") ==
        "s.yaml:1: grid: must be a non-empty mapping, e.g. {filter: [gaussian, median]}");
  CHECK(Err("zip:\n") ==
        "s.yaml:1: zip: must be a non-empty mapping, e.g. {filter: [gaussian, median]}");
  CHECK(Err("grid:\n  a: []\n") ==
        "s.yaml:2: grid.a: must be a non-empty list of values, e.g. [0.5, 1, 2]");
  CHECK(Err("grid:\n  a: 5\n") ==
        "s.yaml:2: grid.a: must be a non-empty list of values, e.g. [0.5, 1, 2]");
  CHECK(Err("grid:\n  a:\n    - 1\n    -\n") ==
        "s.yaml:2: grid.a[1]: empty value (write '' for an empty string)");
  CHECK(Err("grid:\n  a: [1, ~]\n") ==
        "s.yaml:2: grid.a[1]: empty value (write '' for an empty string)");
  CHECK(Err("grid:\n  a:\n    - 1\n    - [2, 3]\n") ==
        "s.yaml:4: grid.a[1]: must be a single value, not a list or mapping");
  CHECK(Err("grid:\n  a: [\"x\\0y\"]\n") == "s.yaml:2: grid.a[0]: contains a NUL character");
  CHECK(Err("grid:\n  1x: [1]\n") ==
        "s.yaml:2: grid.1x: '1x' is not a valid parameter name (letters, digits and _, not "
        "starting with a digit: it becomes the variable PARAM_1X)");
  CHECK(Err("grid:\n  my-name: [1]\n").starts_with("s.yaml:2: grid.my-name: 'my-name' is not"));
  CHECK(Err("grid:\n  filter: [a]\nzip:\n  x: [1]\n  Filter: [2]\n") ==
        "s.yaml:5: zip.Filter: parameter 'Filter' is already defined at s.yaml:2: grid.filter "
        "(names must be unique, ignoring case, across grid, zip, csv and files)");
  CHECK(Err("zip:\n  a: [1, 2]\n  b: [1, 2, 3]\n") ==
        "s.yaml:3: zip.b: has 3 values but zip.a has 2 (zip lists are taken row by row and "
        "must have the same length)");
  CHECK(Err("csv: [a.csv]\n") ==
        "s.yaml:1: csv: must be the path of a CSV file with a header row of names");
  CHECK(Err("files:\n  image: [a, b]\n") ==
        "s.yaml:2: files.image: must be one glob pattern, e.g. 'images/*.png'");
}

TEST_CASE("sweep csv and files errors name the file and line") {
  TempDir dir;
  const std::string d = dir.path();
  auto csv_err = [&](const std::string& text) {
    Write(d + "/t.csv", text);
    return Err("csv: t.csv\n", d);
  };
  CHECK(csv_err("a,b\n1,2\n3\n") == d + "/t.csv:3: row has 1 fields, the header has 2");
  CHECK(csv_err("a,b\n1,\"x\ny\",3\n") == d + "/t.csv:2: row has 3 fields, the header has 2");
  CHECK(csv_err("a,b\n1,\"never\nends\n") == d + "/t.csv:2: quoted field never ends");
  CHECK(csv_err("a,b\n1,\"x\"y\n") == d + "/t.csv:2: text after a closing quote");
  CHECK(csv_err("a,b\n1,x\"y\n") ==
        d + "/t.csv:2: a quote inside an unquoted field (quote the whole field and double the "
            "quote: \"a \"\"b\"\"\")");
  CHECK(csv_err("") == d + "/t.csv: empty (expected a header row of names)");
  CHECK(csv_err("\n\na,b\n") == d + "/t.csv:3: a header but no rows");
  CHECK(csv_err("a,b c\n1,2\n").starts_with(d + "/t.csv:1: column 'b c': 'b c' is not a valid"));
  CHECK(csv_err("a,A\n1,2\n") ==
        d + "/t.csv:1: column 'A': parameter 'A' is already defined at " + d +
            "/t.csv:1: column 'a' (names must be unique, ignoring case, across grid, zip, csv "
            "and files)");
  Result<Sweep> missing = ParseSweep("\ncsv: nope.csv\n", "s.yaml", d);
  REQUIRE(!missing.has_value());
  CHECK(missing.error().code() == Code::kNotFound);
  CHECK(missing.error().message() == "s.yaml:2: csv: cannot read '" + d + "/nope.csv'");
  CHECK(Err("files:\n  image: img/*.png\n", d) ==
        "s.yaml:2: files.image: 'img/*.png' matches no file (in " + d + ")");
}

TEST_CASE("sweep ParamsJson: numbers as written, other values as strings") {
  const ParamPoint p = {{"filter", "median"}, {"sigma", "0.50"},    {"id", "007"},
                        {"n", "-3"},          {"big", "1e999"},     {"e", "1E+3"},
                        {"flag", "true"},     {"q", "say \"hi\"\n"}};
  CHECK(ParamsJson(p) ==
        R"({"filter":"median","sigma":0.50,"id":"007","n":-3,"big":"1e999","e":1E+3,)"
        R"("flag":"true","q":"say \"hi\"\n"})");
  CHECK(ParamsJson({}) == "{}");
}

TEST_CASE("sweep ParamsEnv: PARAM_ and the upper-cased name") {
  const std::map<std::string, std::string> env =
      ParamsEnv({{"filter", "median"}, {"Sigma_2", "0.50"}});
  CHECK(env ==
        std::map<std::string, std::string>{{"PARAM_FILTER", "median"}, {"PARAM_SIGMA_2", "0.50"}});
}

TEST_CASE("sweep IsJsonNumber follows JSON's grammar") {
  for (const char* yes : {"0", "-0", "0.50", "12", "-3.25", "1e3", "1E-3", "2.5e+10"}) {
    CHECK_MESSAGE(IsJsonNumber(yes), yes);
  }
  for (const char* no : {"", "-", "007", ".5", "5.", "+1", "0x10", "1e", "1e999", "NaN", "inf",
                         " 1", "1 ", "1_000"}) {
    CHECK_MESSAGE(!IsJsonNumber(no), no);
  }
}
