# Accounts: the same rules as container-hardening's accounts.yml, in InSpec syntax.

control 'ch-acct-01' do
  impact 0.9
  title 'Only root has uid 0'
  desc 'Any other uid-0 account is an unaudited superuser inside the container (SP 800-190 4.4.3).'
  desc 'check', 'Find passwd entries with uid 0 other than root.'
  desc 'fix', 'Delete the account or give it an unprivileged uid.'
  tag nist: %w[AC-6 IA-2], cci: %w[CCI-000366], severity: 'critical'
  describe passwd.where { uid.to_i == 0 } do
    its('users') { should cmp ['root'] }
  end
end

control 'ch-acct-02' do
  impact 0.9
  title 'No account has an empty password'
  desc 'An empty password field lets anyone reaching su or a login prompt assume the account.'
  tag nist: %w[IA-5 IA-2], severity: 'critical'
  empty = shadow.where { password.nil? || password.empty? }.users
  empty += passwd.where { password.empty? }.users
  describe 'Accounts with an empty password' do
    subject { empty.uniq }
    it { should be_empty }
  end
end

control 'ch-acct-03' do
  impact 0.7
  title 'No weak password hashes'
  desc 'DES, MD5 and NT hashes baked into an image are cracked offline in minutes.'
  tag nist: ['IA-5 (1)'], severity: 'high'
  hashes = shadow.entries.map { |e| [e.user, e.password] }
  hashes += passwd.entries.reject { |e| e.password == 'x' }.map { |e| [e.user, e.password] }
  describe 'Accounts with a DES, MD5 or NTHASH password hash' do
    subject { hashes.select { |_, h| ContainerChecks.weak_hash?(h) }.map(&:first).uniq.sort }
    it { should be_empty }
  end
end

control 'ch-acct-04' do
  impact 0.5
  title 'System accounts have no login shell'
  desc 'Service accounts never log in; a shell only helps an attacker who takes one over.'
  tag nist: %w[AC-2 CM-6], severity: 'medium'
  offenders = users.where { uid > 0 && uid <= 999 }.entries.reject { |u| ContainerChecks::NOLOGIN_SHELLS.include?(u.shell) }
  describe 'System accounts (uid 1..=999) with a login shell' do
    subject { offenders.map { |u| "#{u.username} (#{u.shell})" } }
    it { should be_empty }
  end
end

control 'ch-acct-05' do
  impact 0.5
  title 'Account uids are unique'
  desc 'Shared uids make ownership and audit records ambiguous.'
  tag nist: %w[IA-2 AU-3], severity: 'medium'
  describe passwd.uids do
    it { should_not contain_duplicates }
  end
end

control 'ch-acct-06' do
  impact 0.5
  title 'Account names are unique'
  desc 'Duplicate names resolve to whichever entry a tool reads first, so permissions become unpredictable.'
  tag nist: %w[IA-2 AC-2], severity: 'medium'
  describe passwd.users do
    it { should_not contain_duplicates }
  end
end

control 'ch-acct-07' do
  impact 0.7
  title 'Only the root group has gid 0'
  desc 'Another gid-0 group grants root-group access to all its members.'
  tag nist: %w[AC-6], severity: 'high'
  describe etc_group.where(gid: 0) do
    its('names') { should eq ['root'] }
  end
end

control 'ch-acct-08' do
  impact 0.3
  title 'Group gids are unique'
  desc 'Shared gids silently merge the access of unrelated groups.'
  tag nist: %w[AC-2], severity: 'low'
  describe etc_group.gids do
    it { should_not contain_duplicates }
  end
end

control 'ch-acct-09' do
  impact 0.5
  title 'The root group has no supplementary members'
  desc 'Members of the root group can read and write root-group files such as logs and configs.'
  tag nist: %w[AC-6], severity: 'medium'
  describe etc_group.where(name: 'root') do
    its('users') { should be_empty }
  end
end

control 'ch-acct-10' do
  impact 0.7
  title '/etc/passwd is root-owned and not writable by others'
  desc 'Whoever can write passwd can create a uid-0 account.'
  tag nist: %w[AC-3 AC-6], severity: 'high'
  describe file('/etc/passwd') do
    it { should exist }
    it { should be_file }
    it { should be_owned_by 'root' }
    it { should be_grouped_into 'root' }
    it { should_not be_more_permissive_than('0644') }
  end
end

control 'ch-acct-11' do
  impact 0.7
  title '/etc/shadow is not readable by others'
  desc 'Readable hashes can be cracked offline.'
  tag nist: %w[IA-5 AC-3], severity: 'high'
  if file('/etc/shadow').exist?
    describe file('/etc/shadow') do
      it { should be_file }
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0640') }
    end
  else
    describe file('/etc/shadow') do
      it { should_not exist }
    end
  end
end

control 'ch-acct-12' do
  impact 0.5
  title '/etc/group is root-owned and not writable by others'
  desc 'Whoever can write group can join privileged groups.'
  tag nist: %w[AC-3], severity: 'medium'
  describe file('/etc/group') do
    it { should exist }
    it { should be_file }
    it { should be_owned_by 'root' }
    it { should_not be_more_permissive_than('0644') }
  end
end

control 'ch-acct-13' do
  impact 0.5
  title '/etc/gshadow is not readable by others'
  desc 'Group password hashes deserve the same protection as user hashes.'
  tag nist: %w[IA-5 AC-3], severity: 'medium'
  if file('/etc/gshadow').exist?
    describe file('/etc/gshadow') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0640') }
    end
  else
    describe file('/etc/gshadow') do
      it { should_not exist }
    end
  end
end

control 'ch-acct-14' do
  impact 0.7
  title 'No /etc/hosts.equiv'
  desc 'hosts.equiv grants password-less r-command access based on the client\'s host name.'
  tag nist: %w[IA-2 AC-17], severity: 'high'
  describe file('/etc/hosts.equiv') do
    it { should_not exist }
  end
end

control 'ch-acct-15' do
  impact 0.7
  title 'No .rhosts for root'
  desc 'A .rhosts file trusts remote hosts to log in as root without a password.'
  tag nist: %w[IA-2 AC-17], severity: 'high'
  describe file('/root/.rhosts') do
    it { should_not exist }
  end
end

control 'ch-acct-16' do
  impact 0.5
  title 'No .netrc for root'
  desc '.netrc stores clear-text credentials for remote hosts.'
  tag nist: %w[IA-5], severity: 'medium'
  describe file('/root/.netrc') do
    it { should_not exist }
  end
end
