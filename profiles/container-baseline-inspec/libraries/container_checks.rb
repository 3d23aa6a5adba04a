# Helpers for the container profiles: plain Ruby over values the resources
# return (nothing here reaches the target except through resources).
module ContainerChecks
  NOLOGIN_SHELLS = %w[/sbin/nologin /usr/sbin/nologin /bin/false /usr/bin/false /bin/sync /sbin/shutdown /sbin/halt].freeze
  SECRET_NAMES = /PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL/i.freeze

  # One `find` over the search paths, pruning the excluded ones.
  def self.find_command(paths, exclude, test)
    prune = exclude.map { |x| "-path '#{x}'" }.join(" -o ")
    roots = paths.map { |p| "'#{p}'" }.join(" ")
    return "find #{roots} -xdev #{test} -print" if exclude.empty?
    "find #{roots} -xdev \\( #{prune} \\) -prune -o #{test} -print"
  end

  # DES (13 characters, no `$`), MD5 (`$1$`, `$md5`) and NTHASH (`$3$`);
  # locked (`!`, `*`) and empty fields are not weak hashes.
  def self.weak_hash?(hash)
    h = hash.to_s.sub(/\A!+/, "")
    return false if h.empty? || h.start_with?("*")
    h.start_with?("$1$", "$md5", "$3$") || !h.start_with?("$")
  end

  # Paths from `stat -c "%u %g %n"` lines whose uid or gid is unknown.
  def self.orphans(listing, uids, gids)
    listing.lines.filter_map do |line|
      m = line.match(/\A(\d+) (\d+) (.*)\Z/)
      next unless m
      m[3] unless uids.include?(m[1].to_i) && gids.include?(m[2].to_i)
    end
  end
end
